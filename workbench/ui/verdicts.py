"""A candidate beside its probe, and the first verdict on it: a skin over ``Workspace.first_verdict``.

The probe's face (as recorded with the search) and the candidate's custody face are shown large,
side by side. The analyst records a verdict (possible match, no match, inconclusive) with a
written reason; the library refuses a verdict without one and the page shows its message. A
new verdict on the same candidate replaces the earlier one (both stay in the record). A second,
different person reviews it later (the reviewer's dashboard).

CSS classes: ``wb-verdict-panel`` (the section), ``wb-compare`` (the two pictures),
``wb-compare-probe``, ``wb-compare-custody``, ``wb-compare-title``, ``wb-verdict`` (the three
choices), ``wb-verdict-reason``, ``wb-record-verdict`` ("Record verdict"), ``wb-verdict-earlier``.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..types import Candidate, Decision, SearchRun, Verdict
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .layout import badge, discard, section, set_disabled
from .pictures import LARGE_PX, picture

_VERDICT_LABELS = [
    ("Possible match", Verdict.POSSIBLE_MATCH.value),
    ("No match", Verdict.NO_MATCH.value),
    ("Inconclusive", Verdict.INCONCLUSIVE.value),
]


class VerdictPanel:
    """The candidate compared, and the verdict form.

    Attributes:
        title: which search, probe and candidate is shown.
        probe_box, custody_box: the two pictures, large.
        verdict: possible match / no match / inconclusive (none chosen at first).
        reason: the written reason (required by the library).
        record_button: "Record verdict".
        earlier: the verdict already recorded on this candidate, if any.
        run, candidate: what is shown, or None.
        runner: the task runner (tests ``.wait()`` on it).
        widget: the section to display.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.run: SearchRun | None = None
        self.candidate: Candidate | None = None
        self._listeners: list[Callable[[Decision], None]] = []

        self.title = widgets.HTML('<span class="wb-hint">Click "Compare" on a candidate to see it beside the probe.</span>')
        self.title.add_class("wb-compare-title")
        self.probe_box = widgets.VBox(layout=widgets.Layout(align_items="center"))
        self.probe_box.add_class("wb-compare-probe")
        self.custody_box = widgets.VBox(layout=widgets.Layout(align_items="center"))
        self.custody_box.add_class("wb-compare-custody")
        compare = widgets.HBox([self.probe_box, self.custody_box], layout=widgets.Layout(grid_gap="16px"))
        compare.add_class("wb-compare")
        self.verdict = widgets.RadioButtons(options=_VERDICT_LABELS, value=None, description="Verdict", style={"description_width": "80px"})
        self.verdict.add_class("wb-verdict")
        self.reason = widgets.Textarea(
            description="Reason",
            placeholder="what you compared and saw (required), e.g. 'ear shape and scar above the left eye agree'",
            style={"description_width": "80px"},
            layout=widgets.Layout(width="560px", height="70px"),
        )
        self.reason.add_class("wb-verdict-reason")
        self.record_button = widgets.Button(
            description="Record verdict", button_style="primary", tooltip="record your verdict and reason on this candidate in the case"
        )
        self.record_button.add_class("wb-record-verdict")
        self.earlier = widgets.HTML()
        self.earlier.add_class("wb-verdict-earlier")

        self.record_button.on_click(status.guard("Recording the verdict")(self._record_clicked))

        self.widget = section(
            "6. Compare and record a verdict",
            [self.title, compare, self.earlier, self.verdict, self.reason, widgets.HBox([self.record_button])],
            "wb-verdict-panel",
        )
        self.set_enabled(False)

    # -- what others use ------------------------------------------------------------------------

    @property
    def controls(self) -> list[widgets.Widget]:
        return [self.verdict, self.reason, self.record_button]

    def set_enabled(self, enabled: bool) -> None:
        """Enable the form (only while a candidate is shown)."""
        set_disabled(self.controls, not (enabled and self.candidate is not None))

    def on_recorded(self, callback: Callable[[Decision], None]) -> None:
        """Call ``callback(decision)`` (in the runner's thread) after each verdict recorded."""
        self._listeners.append(callback)

    def clear(self) -> None:
        """Show nothing (another case or search)."""
        self.run = self.candidate = None
        self._set_pictures([], [])
        self.title.value = '<span class="wb-hint">Click "Compare" on a candidate to see it beside the probe.</span>'
        self.earlier.value = ""
        self.set_enabled(False)

    # -- showing a candidate --------------------------------------------------------------------

    def show(self, run: SearchRun, candidate: Candidate) -> None:
        """Show ``candidate`` of ``run`` beside its probe, large, and open the form."""
        probe = run.probe(candidate.probe_id)
        custody = self.ws.custody_face(candidate.face_id, size=LARGE_PX) if candidate.face_id is not None else None
        self.run, self.candidate = run, candidate
        mark = " " + badge("above threshold", "good") if candidate.above_threshold else ""
        manual = " " + badge("drawn by hand", "manual") if probe.manual else ""
        self.title.value = (
            f"Search {run.search_id}, probe <b>{html.escape(probe.probe_id)}</b>{manual}: candidate <b>#{candidate.rank} "
            f"{html.escape(candidate.subject_id)}</b>, score {candidate.score:.3f}{mark}"
        )
        self._set_pictures(
            [widgets.HTML("<b>Probe</b> (from the footage)"), picture(probe.crop_png, LARGE_PX, upscale=True)],
            [
                widgets.HTML(f"<b>Custody image</b> ({html.escape(candidate.subject_id)})"),
                picture(custody, LARGE_PX, alt="custody image gone", upscale=True),
            ],
        )
        self.earlier.value = self._earlier_verdict(run.search_id, candidate)
        self.verdict.value = None
        self.reason.value = ""
        self.set_enabled(True)
        self.status.info(f"Comparing {candidate.subject_id} with {probe.probe_id}: choose a verdict and write why.")

    def _set_pictures(self, probe_children: list, custody_children: list) -> None:
        old = [*self.probe_box.children, *self.custody_box.children]
        self.probe_box.children, self.custody_box.children = probe_children, custody_children
        discard(old)

    def _earlier_verdict(self, search_id: int, candidate: Candidate) -> str:
        for review in self.ws.review_status(search_id):
            if review.probe_id == candidate.probe_id and review.subject_id == candidate.subject_id and review.first is not None:
                first = review.first
                return (
                    f'<span class="wb-hint">Already recorded by {html.escape(first.reviewer)}: <b>{html.escape(first.verdict.value)}</b> '
                    f"({html.escape(first.reason)}). Recording again replaces it; both stay in the record.</span>"
                )
        return ""

    # -- recording ------------------------------------------------------------------------------

    def _record_clicked(self, _button=None) -> None:
        if self.run is None or self.candidate is None:
            raise WorkbenchError('open a candidate first: click "Compare" on one')
        if self.verdict.value is None:
            raise WorkbenchError("choose a verdict: possible match, no match or inconclusive")
        run, candidate, verdict, reason = self.run, self.candidate, self.verdict.value, self.reason.value

        def work(progress, cancel) -> Decision:
            return self.ws.first_verdict(run.search_id, candidate.subject_id, verdict, reason, probe_id=candidate.probe_id)

        self.runner.run("Recording the verdict", work, self._recorded, disable=self.controls, cancellable=False)

    def _recorded(self, decision: Decision) -> None:
        shown = self.candidate
        if shown is not None and (shown.probe_id, shown.subject_id) == (decision.probe_id, decision.subject_id):
            self.earlier.value = self._earlier_verdict(decision.search_id, shown)
            self.verdict.value, self.reason.value = None, ""  # a second click must not record it again
        for callback in self._listeners:
            callback(decision)
        self.status.success(
            f"Recorded: {decision.verdict.value} for {decision.subject_id} (search {decision.search_id}). A second reviewer will check it."
        )
