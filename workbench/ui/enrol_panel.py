"""Enrol custody images from a folder or a manifest CSV, with progress and a table of failures.

A skin over :meth:`Workspace.enrol`. The folder holds one sub-folder per subject (the folder
name is the custody reference); a manifest CSV has the columns ``subject_id,image_path`` and
optional descriptive ones (see :mod:`workbench.gallery.enrol`). Enrolment runs in the background
with a progress bar; Cancel stops it after the batch in flight (what was enrolled is kept, and
running it again finishes the job: images already enrolled are skipped by their hash).

Every row that was not simply enrolled goes to a CSV report in the workspace's reports folder;
the panel shows it as a table (status, subject, file, reason) and offers it for download.

CSS classes: ``wb-enrol`` (the panel), ``wb-enrol-folder``, ``wb-enrol-manifest`` (the two path
fields), ``wb-enrol-button``, ``wb-enrol-counts`` (the totals table), ``wb-enrol-failures``
(the failures table), ``wb-download`` (the report's link).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..workspace import Workspace
from .download import DownloadLink
from .feedback import StatusLine, TaskRunner
from .report_export import report_path
from .tables import html_table, key_value_table, plural

#: the statuses of an enrolment row, as people read them.
STATUS_LABELS = {
    "enrolled": "Enrolled now",
    "skipped": "Skipped (already enrolled, or the same image twice)",
    "no_face": "No face found",
    "unreadable": "Unreadable (missing, empty, corrupt or not an image)",
    "invalid": "Invalid (a row or folder naming no usable image)",
}
FAILURE_COLUMNS = {"status": "Status", "subject_id": "Subject", "path": "File", "reason": "Reason", "ref": "Row or folder"}


class EnrolmentStopped(WorkbenchError):
    """Raised from the progress callback when the person clicks Cancel (after a stored batch)."""

    def __init__(self, done: int, total: int):
        super().__init__(f"enrolment stopped after {done} of {total} images")
        self.done, self.total = done, total


@dataclass
class EnrolResult:
    """What one click of "Enrol" produced.

    Attributes:
        summary: the workspace's EnrolSummary, or None when the run was stopped.
        report: the CSV report of rows not simply enrolled, or None when there was none.
        failures: its rows (dicts with ref, subject_id, path, status, reason).
        stopped_at: (images done, images to do) when Cancel stopped the run, else None.
    """

    summary: object | None
    report: Path | None
    failures: list[dict]
    stopped_at: tuple[int, int] | None = None


def read_report(path: Path | None) -> list[dict]:
    """The rows of an enrolment CSV report (none when there is no report)."""
    if path is None or not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class EnrolPanel:
    """Folder or manifest, "Enrol", then totals and the failures table.

    Attributes:
        folder, manifest: Text fields (paths on the server; give one of them).
        enrol_button: starts the enrolment (through ``runner``).
        counts: HTML table of the totals; failures: HTML table of the report's rows.
        download: link to the CSV report.
        result: the last :class:`EnrolResult`, or None.
        runner: the task runner enrolment goes through.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.result: EnrolResult | None = None
        self._done_callbacks: list[Callable[[EnrolResult], None]] = []
        wide = widgets.Layout(width="640px")
        style = {"description_width": "150px"}
        self.folder = widgets.Text(
            description="Custody folder", placeholder="/data/custody  (one sub-folder per subject)", layout=wide, style=style
        )
        self.folder.add_class("wb-enrol-folder")
        self.manifest = widgets.Text(
            description="or manifest CSV", placeholder="/data/custody/manifest.csv  (subject_id,image_path,...)", layout=wide, style=style
        )
        self.manifest.add_class("wb-enrol-manifest")
        self.enrol_button = widgets.Button(
            description="Enrol", button_style="primary", icon="upload", tooltip="analyse the images and add their faces to the gallery"
        )
        self.enrol_button.add_class("wb-enrol-button")
        self.enrol_button.on_click(status.guard("enrolling")(lambda _: self.enrol()))
        self.counts = widgets.HTML()
        self.counts.add_class("wb-enrol-counts")
        self.failures = widgets.HTML()
        self.failures.add_class("wb-enrol-failures")
        self.download = DownloadLink()
        note = widgets.HTML(
            '<div style="color:#555">Paths are on the server. Running it again is safe: images already enrolled are '
            "skipped. Cancel stops after the batch in flight; what was enrolled is kept.</div>"
        )
        self.widget = widgets.VBox([note, self.folder, self.manifest, self.enrol_button, self.counts, self.failures, self.download])
        self.widget.add_class("wb-enrol")

    def on_done(self, callback: Callable[[EnrolResult], None]) -> None:
        """Call ``callback(result)`` in the runner's thread after each enrolment."""
        self._done_callbacks.append(callback)

    def enrol(self) -> bool:
        """Enrol what the fields name, in the background."""
        folder, manifest = self.folder.value.strip(), self.manifest.value.strip()
        if bool(folder) == bool(manifest):
            raise WorkbenchError("give a custody folder or a manifest CSV (one of them, not both)")
        # Named here, not by the library, so the rows written before a Cancel can still be shown.
        report = report_path(self.ws.settings.reports_dir, "enrol", ".csv")

        def work(progress, cancel) -> EnrolResult:
            def tick(done: float, total: float) -> None:
                progress(done, total)
                if cancel.is_set():  # called after each stored batch: stopping here loses nothing
                    raise EnrolmentStopped(int(done), int(total))

            try:
                summary = self.ws.enrol(folder or None, manifest=manifest or None, report_path=report, progress=tick)
            except EnrolmentStopped as stop:
                return EnrolResult(None, report if report.is_file() else None, read_report(report), stopped_at=(stop.done, stop.total))
            path = Path(summary.report) if summary.report else None
            return EnrolResult(summary, path, read_report(path))

        self.counts.value, self.failures.value = "", ""
        self.download.clear()
        return self.runner.run("enrolling", work, self._show, disable=[self.enrol_button, self.folder, self.manifest])

    def _show(self, result: EnrolResult) -> None:
        self.result = result
        if result.summary is not None:
            s = result.summary
            rows = [(STATUS_LABELS[k], v) for k, v in s.counts.items()]
            rows += [
                ("Images with several faces (the most prominent enrolled)", s.several_faces),
                ("Time", f"{s.seconds:.1f} s ({s.images_per_s:.1f} images analysed per second)"),
                ("Model pack", s.pack_id.split("@")[0]),
            ]
            self.counts.value = key_value_table(rows, css_class="wb-enrol-totals")
        failed = len(result.failures)
        if failed:
            self.failures.value = "<b>Rows not enrolled, and why</b>" + html_table(
                result.failures, FAILURE_COLUMNS, css_class="wb-enrol-failures-table", more_note=f"All rows are in {result.report}."
            )
            self.download.show(result.report, label=f"Download the report ({plural(failed, 'row')})")
        else:
            self.failures.value = "<i>Every image was enrolled or was already enrolled: nothing to report.</i>"
        if result.stopped_at is not None:
            done, total = result.stopped_at
            self.status.warning(
                f"Enrolment stopped after {done} of {total} images; what was enrolled is kept. Run it again to finish "
                "(images already enrolled are skipped)."
            )
        else:
            counts = result.summary.counts
            message = (
                f"Enrolment finished: {counts['enrolled']} enrolled, {counts['skipped']} skipped, {plural(failed, 'row')} in the report."
            )
            self.status.show(message, "warning" if failed else "success")
        for callback in self._done_callbacks:
            callback(result)
