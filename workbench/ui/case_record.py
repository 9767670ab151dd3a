"""What the open case holds: its searches and its decisions, as two small tables.

A skin over ``Workspace.searches`` and ``Workspace.decisions``, refreshed after every action
that adds to the record (opening the case, a search, a verdict). Decisions are never edited: a
new verdict on a candidate supersedes the earlier one, which stays listed (marked replaced).

CSS classes: ``wb-record-panel`` (the section), ``wb-searches`` (the searches table),
``wb-decisions`` (the decisions table); both tables have class ``wb-table``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets

from ..types import Decision, SearchRun
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .layout import section


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return f'<span class="wb-hint">{html.escape(empty)}</span>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="wb-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def searches_table(runs: Sequence[SearchRun]) -> str:
    """HTML table of a case's searches, newest first."""
    rows = []
    for run in sorted(runs, key=lambda r: r.search_id, reverse=True):
        probes = ", ".join(p.probe_id.split("#", 1)[-1] + (" (drawn by hand)" if p.manual else "") for p in run.probes)
        above = sum(bool(c.above_threshold) for c in run.candidates)
        threshold = "" if run.threshold is None else f"{run.threshold:.3f}"
        rows.append(
            (
                run.search_id,
                run.time_utc[:19].replace("T", " "),
                run.user,
                probes,
                run.mode.value,
                run.top,
                threshold,
                len(run.candidates),
                above,
            )
        )
    return _table(
        ["Search", "Time (UTC)", "By", "Faces searched", "Mode", "Top", "Threshold", "Candidates", "Above threshold"],
        rows,
        "No search in this case yet.",
    )


def decisions_table(decisions: Sequence[Decision]) -> str:
    """HTML table of a case's decisions, newest first; replaced ones say so."""
    replaced = {d.supersedes for d in decisions if d.supersedes is not None}
    rows = []
    for d in sorted(decisions, key=lambda d: d.decision_id, reverse=True):
        view = d.verdict.value if d.verdict else (d.agreement.value if d.agreement else "")
        state = "replaced" if d.decision_id in replaced else "current"
        rows.append(
            (
                d.decision_id,
                d.search_id,
                d.probe_id.split("#", 1)[-1],
                d.subject_id,
                d.stage.value,
                view,
                d.reviewer,
                d.reason,
                d.time_utc[:19].replace("T", " "),
                state,
            )
        )
    return _table(
        ["Decision", "Search", "Face", "Subject", "Stage", "Verdict", "By", "Reason", "Time (UTC)", "Status"],
        rows,
        "No verdict in this case yet.",
    )


class CaseRecord:
    """The open case's searches and decisions.

    Attributes:
        searches: HTML table of the searches.
        decisions: HTML table of the decisions.
        runner: the task runner shared with the page (refreshing is quick and done directly).
        widget: the section to display.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.searches = widgets.HTML('<span class="wb-hint">Open a case to see its record.</span>')
        self.searches.add_class("wb-searches")
        self.decisions = widgets.HTML()
        self.decisions.add_class("wb-decisions")
        self.widget = section(
            "7. The case record",
            [widgets.HTML("<b>Searches</b>"), self.searches, widgets.HTML("<b>Verdicts</b>"), self.decisions],
            "wb-record-panel",
        )

    def refresh(self, case_ref: str | None) -> None:
        """List the searches and decisions of ``case_ref`` (nothing when None)."""
        if not case_ref:
            self.searches.value, self.decisions.value = '<span class="wb-hint">Open a case to see its record.</span>', ""
            return
        self.searches.value = searches_table(self.ws.searches(case_ref))
        self.decisions.value = decisions_table(self.ws.decisions(case_ref))
