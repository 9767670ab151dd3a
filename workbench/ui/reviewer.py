"""The reviewer's dashboard: second reviews of first decisions, and case reports.

Under the two-person rule every first decision on a candidate (possible match, no match,
inconclusive) is reviewed by a second, different person, who confirms it or disagrees, with a
written reason. This dashboard shows that person:

1. the queue (:class:`~workbench.ui.review_queue.ReviewQueue`): candidates awaiting a second
   review across open and closed cases, grouped by case and search;
2. the chosen candidate (:class:`~workbench.ui.compare.SideBySide`): the probe and the custody
   face side by side, large and zoomable, with the score and the first reviewer's verdict and
   reason (:class:`CandidateDetails`);
3. the decision (:class:`SecondReviewForm`): a reason and "Confirm" or "Disagree", a skin over
   :meth:`Workspace.second_verdict`. The workspace refuses a second review by the first
   reviewer; the refusal is shown as written in the status line;
4. the case report (:class:`~workbench.ui.report_export.ReportExport`): PDF or HTML, downloaded
   from the page.

Use it in a notebook cell (Voila shows only the widgets)::

    from workbench.ui.reviewer import ReviewerApp
    ReviewerApp.from_environment()

CSS classes (stable, for browser tests): ``wb-reviewer`` (the app); its sections
``wb-queue-section``, ``wb-candidate-section``, ``wb-report-section``; ``wb-candidate-details``
(score and first decision), ``wb-first-decision``, ``wb-own-decision`` (the note shown when the
person signed in made the first decision), ``wb-second-review`` (the form), ``wb-reason``,
``wb-confirm``, ``wb-disagree``; the parts add theirs: ``wb-queue``, ``wb-queue-list``,
``wb-queue-summary``, ``wb-refresh``, ``wb-compare``, ``wb-probe-picture``,
``wb-custody-picture``, ``wb-zoom``, ``wb-report-export``, ``wb-report-case``,
``wb-export-pdf``, ``wb-export-html``, ``wb-download``; and the frame's ``wb-app``,
``wb-header``, ``wb-caveat``, ``wb-status``, ``wb-task``.
"""

from __future__ import annotations

import html
from pathlib import PurePath

import ipywidgets as widgets

from ..errors import WorkbenchError
from ..types import Agreement, Decision
from ..workspace import Workspace
from .compare import ZOOM_MAX_PX, SideBySide
from .dashboard import Dashboard
from .feedback import StatusLine, TaskRunner
from .layout import section
from .report_export import ReportExport
from .review_queue import QueueEntry, ReviewQueue


def _score_text(entry: QueueEntry) -> str:
    run, c = entry.run, entry.candidate
    text = f"similarity score {c.score:.3f} (cosine, from -1 to 1)"
    if run.threshold is not None:
        side = "at or above" if c.above_threshold else "below"
        text += f", {side} the operating threshold {run.threshold:.3f}"
    return text


def probe_caption(entry: QueueEntry) -> str:
    probe = entry.run.probe(entry.review.probe_id)
    parts = [f"probe {probe.probe_id}", f"from {', '.join(PurePath(s).name for s in probe.source.split(';') if s)}"]
    if probe.timestamp_s is not None:
        parts.append(f"at {probe.timestamp_s:.1f} s")
    if probe.quality is not None:
        parts.append(f"image quality {probe.quality:.2f} (0 to 1)")
    if probe.manual:
        parts.append("box drawn by hand")
    if probe.n_faces > 1:
        parts.append(f"{probe.n_faces} faces of the person fused")
    return html.escape(" · ".join(parts))


def custody_caption(entry: QueueEntry) -> str:
    c = entry.candidate
    return html.escape(f"subject {c.subject_id} · rank {c.rank} · {_score_text(entry)}")


def first_decision_html(first: Decision | None) -> str:
    if first is None or first.verdict is None:
        return "<i>No first decision.</i>"
    when = first.time_utc[:16].replace("T", " ")
    return (
        f'<div class="wb-first-decision"><b>First review</b> by <b>{html.escape(first.reviewer)}</b> ({html.escape(when)} UTC): '
        f"<b>{html.escape(first.verdict.value)}</b>.<br>Reason given: &ldquo;{html.escape(first.reason)}&rdquo;</div>"
    )


class CandidateDetails:
    """Case, search, score and the first decision of the chosen candidate (text only).

    Attributes:
        widget: HTML widget (class ``wb-candidate-details``).
    """

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.widget = widgets.HTML()
        self.widget.add_class("wb-candidate-details")

    def show(self, entry: QueueEntry | None) -> None:
        if entry is None:
            self.widget.value = "<i>Choose a candidate in the queue above.</i>"
            return
        run, review = entry.run, entry.review
        own = ""
        if review.first is not None and review.first.reviewer == self.ws.user:
            own = (
                '<div class="wb-own-decision" style="color:#5c4400;background:#fff6d6;border:1px solid #e6cf7a;padding:4px 8px;'
                'margin:4px 0">You made the first decision on this candidate: the second review must be by a different person.</div>'
            )
        self.widget.value = (
            f"<div>Case <b>{html.escape(run.case_ref)}</b>, search {run.search_id} ({html.escape(run.mode.value)}, "
            f"list of {run.top}) run by {html.escape(run.user)}. Candidate <b>{html.escape(review.subject_id)}</b>, "
            f"rank {review.rank}, {html.escape(_score_text(entry))}.</div>"
            f"{first_decision_html(review.first)}{own}"
        )


class SecondReviewForm:
    """A reason and two buttons: confirm the first decision, or disagree with it.

    Attributes:
        reason: Textarea (required by the workspace: every decision has a written reason).
        confirm_button, disagree_button: record the second review (through ``runner``).
        entry: the candidate the form is about, or None (the form is hidden then).
        last_decision: the Decision recorded last, or None.
        runner: the task runner recording goes through.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.entry: QueueEntry | None = None
        self.last_decision: Decision | None = None
        self._recorded_callbacks = []
        self.reason = widgets.Textarea(
            placeholder="Your reason (required), e.g. 'ear shape and the scar above the left eyebrow match'",
            layout=widgets.Layout(width="100%", height="70px"),
        )
        self.reason.add_class("wb-reason")
        self.confirm_button = widgets.Button(
            description="Confirm first decision",
            button_style="success",
            icon="check",
            layout=widgets.Layout(width="auto"),
            tooltip="you agree with the first reviewer's verdict",
        )
        self.confirm_button.add_class("wb-confirm")
        self.disagree_button = widgets.Button(
            description="Disagree",
            button_style="warning",
            icon="times",
            layout=widgets.Layout(width="auto"),
            tooltip="you do not agree with the first reviewer's verdict",
        )
        self.disagree_button.add_class("wb-disagree")
        self.confirm_button.on_click(status.guard("recording your review")(lambda _: self.record(Agreement.CONFIRM)))
        self.disagree_button.on_click(status.guard("recording your review")(lambda _: self.record(Agreement.DISAGREE)))
        label = widgets.HTML("<b>Your review</b> (you are the second reviewer):")
        self.widget = widgets.VBox([label, self.reason, widgets.HBox([self.confirm_button, self.disagree_button])])
        self.widget.add_class("wb-second-review")
        self.show(None)

    @property
    def buttons(self) -> list[widgets.Button]:
        return [self.confirm_button, self.disagree_button]

    def on_recorded(self, callback) -> None:
        """Call ``callback(decision)`` in the runner's thread after a review is recorded."""
        self._recorded_callbacks.append(callback)

    def show(self, entry: QueueEntry | None) -> None:
        if entry is None or self.entry is None or entry.key != self.entry.key:
            self.reason.value = ""  # a reason belongs to one candidate
        self.entry = entry
        self.widget.layout.display = "none" if entry is None else None

    def record(self, agreement: Agreement) -> bool:
        """Record the second review of the chosen candidate (in the background)."""
        entry = self.entry
        if entry is None:
            raise WorkbenchError("choose a candidate in the queue first")
        reason = self.reason.value

        def work(progress, cancel) -> Decision:
            return self.ws.second_verdict(
                entry.review.search_id, entry.review.subject_id, agreement, reason, probe_id=entry.review.probe_id
            )

        return self.runner.run(
            "recording your review", work, lambda d: self._recorded(entry, d), disable=[*self.buttons, self.reason], cancellable=False
        )

    def _recorded(self, entry: QueueEntry, decision: Decision) -> None:
        self.last_decision = decision
        first = entry.review.first
        what = "confirmed" if decision.agreement is Agreement.CONFIRM else "disagreed with"
        self.status.success(
            f"Recorded: you {what} {first.reviewer}'s first decision '{first.verdict.value}' on {entry.review.subject_id} "
            f"(case {entry.case_ref}, search {entry.review.search_id}). It is in the audit log; case reports exported from now on "
            "include it."
        )
        for callback in self._recorded_callbacks:
            callback(decision)


class ReviewerApp(Dashboard):
    """The reviewer's dashboard on one workspace (see the module docstring).

    Attributes:
        ws, status, runner, header, widget: see :class:`~workbench.ui.dashboard.Dashboard`.
        queue: :class:`ReviewQueue`.
        compare: :class:`SideBySide` (``probe_image``, ``custody_image``, ``zoom``).
        details: :class:`CandidateDetails`.
        decision: :class:`SecondReviewForm`.
        export: :class:`ReportExport`.

    Every part shares ``runner``: one action at a time; ``app.runner.wait()`` waits for it. The
    queue loads in the background when the app is made.
    """

    title = "Second review"
    purpose = "Confirm or disagree with first decisions on candidates, and export case reports."
    css_class = "wb-reviewer"

    def __init__(self, ws: Workspace):
        super().__init__(ws)
        self.queue = ReviewQueue(ws, self.status, self.runner)
        self.compare = SideBySide()
        self.details = CandidateDetails(ws)
        self.decision = SecondReviewForm(ws, self.status, self.runner)
        self.export = ReportExport(ws, self.status, self.runner)
        self.queue.on_select(self._show)
        self.queue.also_load(self.export.load_cases)
        self.decision.on_recorded(lambda decision: self.queue.load())  # already in the runner's thread
        self._assemble(
            section("Awaiting a second review", [self.queue.widget], "wb-queue-section"),
            section("Candidate", [self.details.widget, self.compare.widget, self.decision.widget], "wb-candidate-section"),
            section("Case report", [self.export.widget], "wb-report-section"),
        )
        self.details.show(None)
        self.queue.refresh()  # in the background: a large workspace takes a while to read

    def _show(self, entry: QueueEntry | None) -> None:
        self.details.show(entry)
        self.decision.show(entry)
        self.compare.widget.layout.display = "none" if entry is None else None  # no empty picture frames
        if entry is None:
            self.compare.clear()
            return
        probe = entry.run.probe(entry.review.probe_id)
        custody = self.ws.custody_face(entry.candidate.face_id, size=ZOOM_MAX_PX) if entry.candidate.face_id is not None else None
        self.compare.show(probe.crop_png, custody, probe_caption=probe_caption(entry), custody_caption=custody_caption(entry))
        self.export.choose(entry.case_ref)
