"""The reviewer's queue: candidates whose first decision awaits a second, different person.

A skin over :meth:`Workspace.awaiting_second_review`, grouped for reading: one heading line per
case and search (when it ran, who ran it, on what), and under it one line per candidate (rank,
subject, score, the first verdict and who gave it). Choosing a heading chooses the first
candidate under it.

Loading reads every search of every open or closed case, which can take a while in a large
workspace, so :meth:`ReviewQueue.refresh` goes through the task runner; :meth:`ReviewQueue.load`
is the same work in the caller's thread, for callers already inside a runner's action.

CSS classes: ``wb-queue`` (the whole panel), ``wb-queue-list`` (the Select list),
``wb-queue-summary`` (the counts line), ``wb-refresh`` (the refresh button).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

import ipywidgets as widgets

from ..types import Candidate, CandidateReview, SearchRun
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .tables import plural

#: a queue line's value: ("candidate", search_id, probe_id, subject_id) or ("search", search_id).
Key = tuple
#: most lines the queue list shows at once before it scrolls.
QUEUE_ROWS = 10


@dataclass(frozen=True)
class QueueEntry:
    """One candidate awaiting a second review, with the search it belongs to.

    Attributes:
        review: where its review stands (``review.first`` is the decision to confirm or not).
        run: the recorded search (probes, settings, lists as shown).
        candidate: the candidate as shown in that search (face id, image id...).
    """

    review: CandidateReview
    run: SearchRun
    candidate: Candidate

    @property
    def key(self) -> Key:
        return ("candidate", self.review.search_id, self.review.probe_id, self.review.subject_id)

    @property
    def case_ref(self) -> str:
        return self.run.case_ref

    @property
    def label(self) -> str:
        first = self.review.first
        verdict = f"first review: {first.verdict.value} by {first.reviewer}" if first and first.verdict else "first review: none"
        probe = f" · probe {self.review.probe_id}" if len(self.run.probes) > 1 else ""
        return f"\u2003rank {self.review.rank} · {self.review.subject_id} · score {self.review.score:.3f}{probe} · {verdict}"


def search_heading(run: SearchRun) -> str:
    """``DEMO-1 · search 3 · 2026-01-02 09:30 UTC by analyst1 · cctv.jpg``."""
    when = run.time_utc[:16].replace("T", " ")
    sources = sorted({PurePath(part).name for p in run.probes for part in p.source.split(";") if part})
    shown = ", ".join(sources[:2]) + (f" and {len(sources) - 2} more" if len(sources) > 2 else "")
    return f"{run.case_ref} · search {run.search_id} · {when} UTC by {run.user}" + (f" · {shown}" if shown else "")


class ReviewQueue:
    """The list of candidates awaiting a second review, grouped by case and search.

    Attributes:
        list: Select widget; its value is the key of the chosen line.
        summary: HTML line with the counts.
        refresh_button: reloads the queue (through ``runner``).
        entries: the queue as last loaded, grouped order.
        runner: the task runner loading goes through.
    """

    def __init__(self, ws: Workspace, status: StatusLine, runner: TaskRunner):
        self.ws, self.status, self.runner = ws, status, runner
        self.entries: list[QueueEntry] = []
        self._by_key: dict[Key, QueueEntry] = {}
        self._first_of_search: dict[int, Key] = {}
        self._listeners: list[Callable[[QueueEntry | None], None]] = []
        self._loaders: list[Callable[[], None]] = []
        self._quiet = False  # True while the list is refilled: one notice after, not one per change
        self.list = widgets.Select(options=[], rows=QUEUE_ROWS, layout=widgets.Layout(width="100%"))
        self.list.add_class("wb-queue-list")
        self.summary = widgets.HTML()
        self.summary.add_class("wb-queue-summary")
        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="read the queue again (others may have reviewed meanwhile)"
        )
        self.refresh_button.add_class("wb-refresh")
        self.refresh_button.on_click(status.guard("reading the review queue")(lambda _: self.refresh()))
        self.list.observe(status.guard("showing the candidate")(self._on_choice), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.summary, self.refresh_button], layout=widgets.Layout(align_items="center")), self.list]
        )
        self.widget.add_class("wb-queue")

    @property
    def selected(self) -> QueueEntry | None:
        return self._by_key.get(self.list.value)

    def on_select(self, callback: Callable[[QueueEntry | None], None]) -> None:
        """Call ``callback(entry)`` whenever the chosen candidate changes (None: nothing chosen)."""
        self._listeners.append(callback)

    def also_load(self, loader: Callable[[], None]) -> None:
        """Call ``loader()`` whenever the queue is read (same thread): for parts of the page
        whose lists go stale with it, such as the case list of the report export."""
        self._loaders.append(loader)

    def refresh(self) -> bool:
        """Reload the queue in the background (see :meth:`load`)."""
        return self.runner.run(
            "reading the review queue",
            lambda progress, cancel: self.load(),
            lambda count: self.status.info(self._counts_text()),
            disable=[self.refresh_button],
            cancellable=False,
        )

    def load(self) -> int:
        """Read the queue now, show it, keep the chosen candidate if it is still waiting (else
        choose the first); returns how many candidates wait."""
        for loader in self._loaders:
            loader()
        runs: dict[int, SearchRun] = {}
        entries = []
        for review in self.ws.awaiting_second_review():
            if review.search_id not in runs:  # each search read once, however many of its candidates wait
                runs[review.search_id] = self.ws.search_run(review.search_id)
            run = runs[review.search_id]
            candidate = next(c for c in run.candidates if c.probe_id == review.probe_id and c.subject_id == review.subject_id)
            entries.append(QueueEntry(review, run, candidate))
        entries.sort(
            key=lambda e: (e.case_ref, e.review.search_id, [p.probe_id for p in e.run.probes].index(e.review.probe_id), e.review.rank)
        )
        self._show(entries)
        return len(entries)

    def _show(self, entries: list[QueueEntry]) -> None:
        kept = self.list.value
        self.entries = entries
        self._by_key = {e.key: e for e in entries}
        self._first_of_search = {}
        options = []
        for entry in entries:
            sid = entry.review.search_id
            if sid not in self._first_of_search:
                self._first_of_search[sid] = entry.key
                options.append((search_heading(entry.run), ("search", sid)))
            options.append((entry.label, entry.key))
        self.summary.value = html.escape(self._counts_text())
        # As tall as its lines (up to 10, then it scrolls); an empty list would stand as a blank
        # box under "Nothing awaits a second review".
        self.list.rows = min(QUEUE_ROWS, max(2, len(options)))
        self.list.layout.display = None if entries else "none"
        self._quiet = True
        try:
            self.list.options = options
            self.list.value = kept if kept in self._by_key else (entries[0].key if entries else None)
        finally:
            self._quiet = False
        self._notify()

    def _counts_text(self) -> str:
        if not self.entries:
            return "Nothing awaits a second review."
        cases = sorted({e.case_ref for e in self.entries})
        searches = len({e.review.search_id for e in self.entries})
        waits = "awaits" if len(self.entries) == 1 else "await"
        return (
            f"{plural(len(self.entries), 'candidate')} {waits} a second review, in {plural(searches, 'search', 'searches')} "
            f"of {plural(len(cases), 'case')} ({', '.join(cases)})."
        )

    def _on_choice(self, change) -> None:
        value = change["new"]
        if self._quiet:
            return
        if isinstance(value, tuple) and value[:1] == ("search",):
            self.list.value = self._first_of_search[value[1]]  # a heading chooses its first candidate
            return
        self._notify()

    def _notify(self) -> None:
        entry = self.selected
        for callback in self._listeners:
            callback(entry)
