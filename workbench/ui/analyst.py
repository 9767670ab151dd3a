"""The analyst's dashboard: case, footage, face tracks, faces drawn by hand, search, first verdicts.

One page for an analyst of an identification unit, in the order of the work::

    1. Case            open or create the case every search is recorded in
    2. Footage         upload a video or a still, or choose an exhibit; find the faces in it
    3. Face tracks     the people found, best shot first; tick the ones to search
    4. Draw by hand    box a face the detector missed, on any analysed frame
    5. Search          search the ticked faces in the open case; ranked candidates per face
    6. Verdict         a candidate beside the probe, large; a first verdict with a reason
    7. Case record     the case's searches and verdicts

In a notebook or Voila::

    from workbench.ui.analyst import AnalystApp
    AnalystApp.from_environment()        # WORKBENCH_HOME, and the user the server authenticated

Each part is a component (its own module) over one :class:`~workbench.Workspace` function, with
a ``widget`` to show and a ``runner`` (the page's one :class:`~workbench.ui.feedback.TaskRunner`:
one action at a time, in the background, with progress and Cancel). Every callback goes through
the page's :class:`~workbench.ui.feedback.StatusLine`, which says in plain words what happened.
Nothing but part 1 is enabled until a case is open. The system only proposes candidates: the
header says so, and trained people make every decision.

CSS classes for browser tests (each module's docstring lists its own):

* page: ``wb-app``, ``wb-analyst``, ``wb-header``, ``wb-caveat``, ``wb-feedback``, ``wb-status``
  (the status line; ``wb-status-<kind>`` inside it), ``wb-task`` (progress bar and Cancel);
* 1 ``wb-case-panel``: ``wb-case-choice``, ``wb-case-ref``, ``wb-case-offence``,
  ``wb-case-purpose``, ``wb-case-officer``, ``wb-open-case``, ``wb-new-case``, ``wb-case-summary``;
* 2 ``wb-footage-panel``: ``wb-upload``, ``wb-footage-choice``, ``wb-refresh-exhibits``,
  ``wb-fps``, ``wb-extract``, ``wb-footage-summary``;
* 3 ``wb-tracks-panel``: ``wb-tracks-summary``, ``wb-track-grid``, ``wb-track-card`` (+
  ``wb-low-quality``), ``wb-track-select``, ``wb-track-frames``, ``wb-tracks-prev``,
  ``wb-tracks-next``, ``wb-track-strip``;
* 4 ``wb-manual-panel``: ``wb-frame-slider``, ``wb-frame-label``, ``wb-draw-box`` (or
  ``wb-frame-image``), ``wb-box-x1``, ``wb-box-y1``, ``wb-box-x2``, ``wb-box-y2``,
  ``wb-add-manual``, ``wb-manual-card``, ``wb-manual-select``;
* 5 ``wb-search-panel``: ``wb-top``, ``wb-threshold``, ``wb-mode``, ``wb-search``,
  ``wb-search-summary``, ``wb-search-results``, ``wb-probe-row``, ``wb-probe-card``,
  ``wb-candidate-card`` (+ ``wb-above-threshold``, ``wb-selected-card``), ``wb-candidate-view``,
  ``wb-candidate-verdict``;
* 6 ``wb-verdict-panel``: ``wb-compare``, ``wb-compare-title``, ``wb-compare-probe``,
  ``wb-compare-custody``, ``wb-verdict``, ``wb-verdict-reason``, ``wb-record-verdict``,
  ``wb-verdict-earlier``;
* 7 ``wb-record-panel``: ``wb-searches``, ``wb-decisions``.
"""

from __future__ import annotations

import html
import os

import ipywidgets as widgets

from ..types import Candidate, Case, Decision, SearchRun
from ..workspace import Workspace
from .case_panel import CasePanel
from .case_record import CaseRecord
from .feedback import StatusLine, TaskRunner
from .footage_panel import FootagePanel, LoadedFootage
from .layout import style_sheet
from .manual_box import ManualBoxPanel
from .search_panel import SearchPanel, Selection
from .tracks import TracksGrid
from .verdicts import VerdictPanel

CAVEAT = "Candidates are investigative leads for trained reviewers, not identifications."


class AnalystApp:
    """The analyst's dashboard over one workspace.

    Args:
        ws: the open workspace (its user is the analyst recorded in the case).
        background: False runs every action in the caller's thread (no threads at all).

    Attributes:
        ws: the workspace.
        status: the page's status line (``.kind``, ``.message``).
        runner: the page's task runner, shared by every component.
        case_panel, footage_panel, tracks, manual, search_panel, verdicts, record: the components.
        widget: the page (a VBox).
    """

    def __init__(self, ws: Workspace, *, background: bool = True):
        self.ws = ws
        self.status = StatusLine()
        self.status.info("Open a case to start (part 1).")  # first: a part that fails to start replaces it with why
        self.runner = TaskRunner(self.status, background=background)

        self.case_panel = CasePanel(ws, self.status, self.runner)
        self.footage_panel = FootagePanel(ws, self.status, self.runner)
        self.tracks = TracksGrid(self.status, self.runner)
        self.manual = ManualBoxPanel(ws, self.status, self.runner)
        self.search_panel = SearchPanel(ws, self.status, self.runner, selection=self._selection, case_ref=self._case_ref)
        self.verdicts = VerdictPanel(ws, self.status, self.runner)
        self.record = CaseRecord(ws, self.status, self.runner)

        self.case_panel.on_open(self._case_opened)
        self.footage_panel.on_loaded(self._footage_loaded)
        self.search_panel.on_searched(self._searched)
        self.search_panel.on_compare(self._compare)
        self.verdicts.on_recorded(self._verdict_recorded)

        feedback = widgets.VBox([self.status, self.runner.widget])
        feedback.add_class("wb-feedback")
        self.widget = widgets.VBox(
            [
                style_sheet(),
                self._header(),
                feedback,
                self.case_panel.widget,
                self.footage_panel.widget,
                self.tracks.widget,
                self.manual.widget,
                self.search_panel.widget,
                self.verdicts.widget,
                self.record.widget,
            ],
            layout=widgets.Layout(padding="4px 8px"),
        )
        self.widget.add_class("wb-app")
        self.widget.add_class("wb-analyst")

    @classmethod
    def from_environment(cls, home: str | os.PathLike | None = None, *, user: str | None = None, **options) -> AnalystApp:
        """The dashboard on ``$WORKBENCH_HOME`` as the person the environment names (see :mod:`workbench.ui.session`)."""
        from .session import open_workspace

        return cls(open_workspace(home, user=user), **options)

    # -- showing it -----------------------------------------------------------------------------

    def _header(self) -> widgets.HTML:
        where = f"workspace <code>{html.escape(str(self.ws.home))}</code>, signed in as <b>{html.escape(self.ws.user)}</b>"
        # No title here: the notebook's first cell is the page's title.
        header = widgets.HTML(
            f'<div class="wb-hint" style="text-align:right">Analyst dashboard: {where}</div>'
            '<div class="wb-caveat" role="note" '
            'style="background:#fff6d6;border:1px solid #e6cf7a;border-radius:4px;padding:6px 10px;margin:4px 0">'
            f"<b>{html.escape(CAVEAT)}</b> Trained people make every decision; the system only proposes candidates.</div>"
        )
        header.add_class("wb-header")
        return header

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def close(self) -> None:
        """Close the workspace's connections (the page stops working)."""
        self.ws.close()

    # -- wiring the parts together --------------------------------------------------------------

    def _case_ref(self) -> str | None:
        return self.case_panel.case.reference if self.case_panel.case is not None else None

    def _selection(self) -> Selection:
        return Selection(
            self.footage_panel.loaded.footage if self.footage_panel.loaded else None,
            self.tracks.selected_track_ids(),
            self.manual.selected_probes(),
        )

    def _case_opened(self, case: Case) -> None:
        self.footage_panel.set_enabled(True)
        self.footage_panel.refresh_exhibits()
        self.tracks.set_enabled(True)
        self.manual.set_enabled(True)  # only once footage is loaded
        self.search_panel.clear()
        self.search_panel.set_enabled(True)
        self.verdicts.clear()
        self.record.refresh(case.reference)

    def _footage_loaded(self, loaded: LoadedFootage) -> None:
        self.tracks.show(loaded)
        self.manual.set_footage(loaded)
        self.manual.set_enabled(True)

    def _searched(self, run: SearchRun) -> None:
        self.verdicts.clear()
        self.record.refresh(run.case_ref)

    def _compare(self, run: SearchRun, candidate: Candidate) -> None:
        self.verdicts.show(run, candidate)

    def _verdict_recorded(self, decision: Decision) -> None:
        self.search_panel.mark_verdict(decision.probe_id, decision.subject_id, f"your verdict: {decision.verdict.value}")
        self.record.refresh(self._case_ref())
