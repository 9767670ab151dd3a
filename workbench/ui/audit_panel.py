"""Check the audit log's hash chain, and export the log (or one case's entries) as CSV.

Skins over :meth:`Workspace.verify_audit` and :meth:`Workspace.export_audit`. Each entry of the
audit log holds the hash of the one before, so a changed, deleted or reordered entry breaks the
chain from there on; the check names the first entry that fails. The export is written into the
workspace's reports folder under a new name each time and offered for download.

CSS classes: ``wb-audit`` (the panel), ``wb-audit-verify`` (the check button),
``wb-audit-result`` (what the check found), ``wb-audit-case`` (the case dropdown),
``wb-audit-export`` (the export button), ``wb-download`` (the CSV's link).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..workspace import Workspace
from .download import DownloadLink
from .feedback import StatusLine, TaskRunner
from .report_export import report_path
from .tables import plural

ALL_ENTRIES = "(every entry)"


class AuditPanel:
    """The "Check the audit log" button, and a case dropdown with "Export as CSV".

    Attributes:
        verify_button: runs the check; result: HTML saying what it found; last_check: the
            VerifyResult (``ok``, ``entries``, ``first_bad_seq``, ``problem``), or None.
        case: Dropdown of cases ("(every entry)" exports the whole log).
        export_button: writes the CSV; download: its link; last_export: (path, entries) or None.
        runner: the task runner both actions go through.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.last_check = None
        self.last_export: tuple | None = None
        self.verify_button = widgets.Button(
            description="Check the audit log",
            icon="check-square-o",
            layout=widgets.Layout(width="auto"),
            tooltip="recompute the hash chain of every entry",
        )
        self.verify_button.add_class("wb-audit-verify")
        self.verify_button.on_click(status.guard("checking the audit log")(lambda _: self.verify()))
        self.result = widgets.HTML()
        self.result.add_class("wb-audit-result")
        self.case = widgets.Dropdown(description="Entries of", options=[ALL_ENTRIES], value=ALL_ENTRIES)
        self.case.add_class("wb-audit-case")
        self.export_button = widgets.Button(
            description="Export as CSV", icon="download", tooltip="write the entries to a CSV file for disclosure"
        )
        self.export_button.add_class("wb-audit-export")
        self.export_button.on_click(status.guard("exporting the audit log")(lambda _: self.export()))
        self.download = DownloadLink()
        self.widget = widgets.VBox(
            [widgets.HBox([self.verify_button]), self.result, widgets.HBox([self.case, self.export_button]), self.download]
        )
        self.widget.add_class("wb-audit")

    def load_cases(self) -> None:
        chosen = self.case.value
        self.case.options = [ALL_ENTRIES, *(c.reference for c in self.ws.list_cases())]
        self.case.value = chosen if chosen in self.case.options else ALL_ENTRIES

    def verify(self) -> bool:
        return self.runner.run(
            "checking the audit log",
            lambda progress, cancel: self.ws.verify_audit(),
            self._checked,
            disable=[self.verify_button, self.export_button],
            cancellable=False,
        )

    def _checked(self, check) -> None:
        self.last_check = check
        if check.ok:
            text = f"Intact: all {plural(check.entries, 'entry', 'entries')} link up, and none was changed after it was written."
            self.result.value = f'<div class="wb-audit-ok" style="color:#1d4d2b"><b>&#x2714; {html.escape(text)}</b></div>'
            self.status.success(f"Audit log checked: {text}")
        else:
            where = f" at entry {check.first_bad_seq} of {check.entries}" if check.first_bad_seq is not None else ""
            text = f"BROKEN{where}: {check.problem}. Tell the system owner before anything is disclosed."
            self.result.value = f'<div class="wb-audit-broken" style="color:#6b1111"><b>&#x2716; {html.escape(text)}</b></div>'
            self.status.error(f"Audit log checked: {text}")

    def export(self) -> bool:
        case_ref = None if self.case.value == ALL_ENTRIES else self.case.value
        out = report_path(self.ws.settings.reports_dir, f"audit-{case_ref or 'all'}", ".csv")
        return self.runner.run(
            "exporting the audit log",
            lambda progress, cancel: (out, self.ws.export_audit(out, case_ref=case_ref)),
            self._exported,
            disable=[self.verify_button, self.export_button],
            cancellable=False,
        )

    def _exported(self, written: tuple) -> None:
        path, count = written
        self.last_export = written
        self.download.show(path)
        self.status.success(f"Audit log exported: {plural(count, 'entry', 'entries')} written to {path.name}. Use the download link below.")
