"""Export a case report (PDF or HTML) and download it from the page.

A skin over :meth:`Workspace.export_report`: pick a case, click a format; the report is written
into the workspace's reports folder under a new name each time (``OP-7-20260102T0930Z.pdf``), so
an earlier export, whose sha256 the audit log holds, is never overwritten; then a download
link (:class:`~workbench.ui.download.DownloadLink`) appears.

CSS classes: ``wb-report-export`` (the panel), ``wb-report-case`` (the case dropdown),
``wb-export-pdf``, ``wb-export-html`` (the buttons), ``wb-download`` (the link).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..workspace import Workspace
from .download import DownloadLink, human_size
from .feedback import StatusLine, TaskRunner
from .tables import plural


def report_path(reports_dir: Path, case_ref: str, suffix: str, *, now: datetime | None = None) -> Path:
    """A new file name for a report of ``case_ref``: the reference made safe for a file name,
    then the UTC time to the second (``OP-7-20260102T093000Z.pdf``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", case_ref).strip("._") or "case"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = reports_dir / f"{safe}-{stamp}{suffix}"
    n = 2
    while path.exists():  # two exports in the same second
        path = reports_dir / f"{safe}-{stamp}-{n}{suffix}"
        n += 1
    return path


class ReportExport:
    """Case dropdown, "PDF report" and "HTML report" buttons, and the download link.

    Attributes:
        case: Dropdown of the workspace's cases (reference values).
        pdf_button, html_button: start the export (through ``runner``).
        download: the link to the last report written.
        last_export: what :meth:`Workspace.export_report` returned last (``out``, ``sha256``...), or None.
        runner: the task runner the export goes through (``runner.wait()`` in tests).
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.case = widgets.Dropdown(description="Case", options=[], layout=widgets.Layout(width="320px"))
        self.case.add_class("wb-report-case")
        self.pdf_button = widgets.Button(
            description="PDF report", icon="file-pdf-o", tooltip="write the case report as PDF and offer it for download"
        )
        self.pdf_button.add_class("wb-export-pdf")
        self.html_button = widgets.Button(
            description="HTML report", icon="file-code-o", tooltip="write the case report as a web page and offer it for download"
        )
        self.html_button.add_class("wb-export-html")
        self.download = DownloadLink()
        self.last_export: dict | None = None
        self.pdf_button.on_click(status.guard("exporting the report")(lambda _: self.export(".pdf")))
        self.html_button.on_click(status.guard("exporting the report")(lambda _: self.export(".html")))
        note = widgets.HTML(
            '<div style="color:#555">The report holds every search of the case, the candidates as shown, both reviews '
            "of each decision and the audit check. Each export is recorded in the audit log.</div>"
        )
        self.widget = widgets.VBox([note, widgets.HBox([self.case, self.pdf_button, self.html_button]), self.download])
        self.widget.add_class("wb-report-export")

    def load_cases(self) -> None:
        """Fill the dropdown with the workspace's cases (keeping the one chosen, if still there)."""
        chosen = self.case.value
        refs = [c.reference for c in self.ws.list_cases()]
        self.case.options = refs
        if chosen in refs:
            self.case.value = chosen

    def choose(self, case_ref: str) -> None:
        """Preselect ``case_ref`` (the case of the candidate being reviewed)."""
        if case_ref not in self.case.options:
            self.case.options = [*self.case.options, case_ref]
        self.case.value = case_ref

    def export(self, suffix: str) -> bool:
        """Write the report of the chosen case as ``suffix`` (".pdf" or ".html") and offer it."""
        case_ref = self.case.value
        if not case_ref:
            raise WorkbenchError("choose a case first")
        out = report_path(self.ws.settings.reports_dir, case_ref, suffix)
        doing = f"writing the {suffix.lstrip('.').upper()} report of case {case_ref}"
        return self.runner.run(
            doing, lambda progress, cancel: self.ws.export_report(case_ref, out), self._exported,
            disable=[self.pdf_button, self.html_button, self.case], cancellable=False,
        )  # fmt: skip

    def _exported(self, result: dict) -> None:
        self.last_export = result
        path = Path(result["out"])
        self.download.show(path)
        audit = "the audit log checks out" if result.get("audit_ok") else "WARNING: the audit log check FAILED (see the report)"
        self.status.show(
            f"Report written: {path.name} ({human_size(path.stat().st_size)}), {plural(result['searches'], 'search', 'searches')} and "
            f"{plural(result['decisions'], 'decision')}; {audit}. The export is recorded in the audit log. Use the download link below.",
            "success" if result.get("audit_ok") else "warning",
        )
