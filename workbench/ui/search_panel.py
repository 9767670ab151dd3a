"""Search the faces chosen, inside the open case: a skin over ``Workspace.search``.

The analyst ticks face tracks (part 3) and faces drawn by hand (part 4), sets how many
candidates to list per face, the threshold (blank: the model pack's own) and the mode, and
clicks "Search selected faces". The search is recorded in the case with everything shown. Each
probe is shown beside its ranked candidates: the custody face, the subject id, the score (cosine
similarity, 3 decimals), how often unrelated faces in the gallery score that high (the estimated
false match rate from the gallery's calibration, :mod:`workbench.thresholds`) and a mark when the
score reaches the threshold. A search below the pack's set operating threshold shows its warning
above the results (and the status line turns to a warning); a pack with no set threshold says so.
"Compare" opens a candidate beside the probe for a verdict (part 6).

Modes (as NIST FRTE 1:N): investigation lists a fixed number of candidates per face whatever
their score; identification lists only those that reach the threshold.

CSS classes: ``wb-search-panel`` (the section), ``wb-top``, ``wb-threshold``, ``wb-mode``,
``wb-search`` ("Search selected faces"), ``wb-search-results``, ``wb-search-summary``,
``wb-probe-row`` (a probe and its candidates), ``wb-probe-card``, ``wb-candidate-card`` (plus
``wb-above-threshold``, and ``wb-selected-card`` for the one compared), ``wb-candidate-fmr`` (the
estimated false match rate phrase on a card), ``wb-candidate-view`` ("Compare"),
``wb-candidate-verdict`` (the verdict recorded on it), ``wb-search-warning`` and ``wb-search-note``
(in the summary).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np

from ..errors import WorkbenchError
from ..thresholds import DUPLICATES_CAVEAT, fmr_phrase
from ..types import Candidate, SearchMode, SearchRun
from ..workspace import Workspace
from .feedback import StatusLine, TaskRunner
from .layout import badge, caption, card, card_grid, discard, hint, plural, section, set_disabled
from .pictures import THUMB_PX, picture

if TYPE_CHECKING:
    from ..footage import FootageResult
    from ..types import Probe

#: the most candidates per face the page offers to list.
MAX_TOP = 200


@dataclass(frozen=True)
class Selection:
    """What the analyst chose to search: tracks of the footage shown and faces drawn by hand."""

    footage: FootageResult | None
    track_ids: list[int] = field(default_factory=list)
    manual: list[Probe] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.track_ids) + len(self.manual)


def parse_threshold(text: str) -> float | None:
    """The threshold typed: blank = None (the pack's set operating threshold, else the model's
    default), else a cosine in [-1, 1]."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -1.0 <= value <= 1.0:
        raise WorkbenchError(
            f"the threshold must be a number between -1 and 1 (a cosine similarity such as 0.36), or blank for the model's own; "
            f"got {text!r}"
        )
    return value


class CandidateCard:
    """One candidate: custody face, subject, score, how often unrelated faces score that high,
    the above-threshold mark and "Compare". ``calibration``: the run's calibration summary."""

    def __init__(self, candidate: Candidate, face: np.ndarray | None, calibration: dict | None = None):
        self.candidate = candidate
        marks = badge("above threshold", "good") if candidate.above_threshold else ""
        calibration = calibration or {}
        fmr = (
            fmr_phrase(candidate.fmr_at_score, pairs=calibration.get("pairs"), time_utc=calibration.get("time_utc"), basis=False)
            if candidate.fmr_at_score is not None
            else "not calibrated"
        )
        self.view_button = widgets.Button(
            description="Compare",
            layout=widgets.Layout(width="auto"),
            tooltip="show this custody face beside the probe, to record a verdict",
        )
        self.view_button.add_class("wb-candidate-view")
        self.verdict = widgets.HTML()
        self.verdict.add_class("wb-candidate-verdict")
        self.widget = card(
            [
                picture(face, THUMB_PX, alt="image gone"),
                caption(
                    [
                        f"<b>#{candidate.rank} {html.escape(candidate.subject_id)}</b>",
                        f"score {candidate.score:.3f}",
                        f'<span class="wb-candidate-fmr" style="font-size:85%">{html.escape(fmr)}</span>',
                        marks,
                    ]
                ),
                self.verdict,
                self.view_button,
            ],
            "wb-candidate-card",
        )
        if candidate.above_threshold:
            self.widget.add_class("wb-above-threshold")


def _calibration_note(run: SearchRun) -> str:
    """What the phrases under the scores rest on (HTML), or "" without a calibration."""
    c = run.calibration
    if not c or c.get("missing"):
        return ""
    return (
        '<div class="wb-hint">"Unrelated faces score this high": measured on '
        f"{c.get('pairs', 0):,} comparisons of the gallery's own faces of different subjects ({str(c.get('time_utc', ''))[:10]}). "
        f"{html.escape(DUPLICATES_CAVEAT)}</div>"
    )


def probe_card(probe: Probe) -> widgets.VBox:
    """The probe as searched: its crop, where it comes from, and whether a person drew it."""
    where = (
        f"{probe.start_s:.1f}&ndash;{probe.end_s:.1f} s"
        if probe.start_s is not None and probe.end_s != probe.start_s
        else (f"at {probe.timestamp_s:.2f} s" if probe.timestamp_s is not None else "still")
    )
    lines = [f"<b>{html.escape(probe.probe_id.split('#', 1)[-1])}</b>", where]
    if probe.quality is not None:
        lines.append(f"quality {probe.quality:.2f}")
    if probe.manual:
        lines.append(badge("drawn by hand", "manual"))
    box = card([widgets.HTML("<b>Probe</b>"), picture(probe.crop_png, THUMB_PX), caption(lines)], "wb-probe-card")
    box.layout.flex = "0 0 auto"
    return box


class SearchPanel:
    """Search controls and results.

    Attributes:
        top: candidates per face (default ``settings.top``).
        threshold: operating threshold, blank = the model pack's.
        mode: investigation or identification.
        search_button: "Search selected faces".
        results: the probes and their candidates.
        run: the last :class:`~workbench.types.SearchRun`, or None.
        cards: {(probe_id, subject_id): :class:`CandidateCard`} of ``run``.
        runner: the task runner (tests ``.wait()`` on it).
        widget: the section to display.
    """

    def __init__(
        self,
        ws: Workspace,
        status: StatusLine,
        runner: TaskRunner,
        *,
        selection: Callable[[], Selection],
        case_ref: Callable[[], str | None],
    ):
        self.ws, self.status, self.runner = ws, status, runner
        self._selection, self._case_ref = selection, case_ref
        self.run: SearchRun | None = None
        self.cards: dict[tuple[str, str], CandidateCard] = {}
        self._searched: list[Callable[[SearchRun], None]] = []
        self._compared: list[Callable[[SearchRun, Candidate], None]] = []

        style = {"description_width": "160px"}
        self.top = widgets.BoundedIntText(
            value=ws.settings.top, min=1, max=MAX_TOP, description="Candidates per face", style=style, layout=widgets.Layout(width="250px")
        )
        self.top.add_class("wb-top")
        # Blank by default: the search then uses the pack's set operating threshold (a value typed
        # here below it is recorded with a warning).
        self.threshold = widgets.Text(
            value="",
            description="Threshold",
            placeholder="blank: the set operating threshold",
            style=style,
            layout=widgets.Layout(width="340px"),
        )
        self.threshold.add_class("wb-threshold")
        self.mode = widgets.ToggleButtons(
            options=[
                ("Investigation: a fixed-length list", SearchMode.INVESTIGATION.value),
                ("Identification: only above the threshold", SearchMode.IDENTIFICATION.value),
            ],
            value=SearchMode.INVESTIGATION.value,
            description="Mode",
            style={"description_width": "160px", "button_width": "280px"},
        )
        self.mode.add_class("wb-mode")
        self.search_button = widgets.Button(
            description="Search selected faces",
            button_style="primary",
            tooltip="search the ticked tracks and faces drawn by hand in the open case; the search is recorded",
            layout=widgets.Layout(width="220px"),
        )
        self.search_button.add_class("wb-search")
        self.summary = widgets.HTML()
        self.summary.add_class("wb-search-summary")
        self.results = widgets.VBox()
        self.results.add_class("wb-search-results")

        self.search_button.on_click(status.guard("Searching")(self._search_clicked))

        self.widget = section(
            "5. Search the gallery",
            [
                hint("Tick faces in parts 3 and 4 first. Every search is recorded in the case."),
                widgets.HBox([self.top, self.threshold]),
                self.mode,
                widgets.HBox([self.search_button]),
                self.summary,
                self.results,
            ],
            "wb-search-panel",
        )
        self.set_enabled(False)

    # -- what others use ------------------------------------------------------------------------

    @property
    def controls(self) -> list[widgets.Widget]:
        return [self.top, self.threshold, self.mode, self.search_button] + [c.view_button for c in self.cards.values()]

    def set_enabled(self, enabled: bool) -> None:
        set_disabled(self.controls, not enabled)

    def on_searched(self, callback: Callable[[SearchRun], None]) -> None:
        """Call ``callback(run)`` (in the runner's thread) after each search."""
        self._searched.append(callback)

    def on_compare(self, callback: Callable[[SearchRun, Candidate], None]) -> None:
        """Call ``callback(run, candidate)`` when the analyst opens a candidate."""
        self._compared.append(callback)

    def mark_verdict(self, probe_id: str, subject_id: str, text: str) -> None:
        """Show the verdict recorded on a candidate's card."""
        card_ = self.cards.get((probe_id, subject_id))
        if card_ is not None:
            card_.verdict.value = badge(text, "info")

    def clear(self) -> None:
        """Forget the results shown (another case was opened)."""
        self.run = None
        old = list(self.results.children)
        self.results.children, self.cards, self.summary.value = [], {}, ""
        discard(old)

    # -- searching ------------------------------------------------------------------------------

    def _search_clicked(self, _button=None) -> None:
        case_ref = self._case_ref()
        if not case_ref:
            raise WorkbenchError("open a case first (part 1): every search is recorded in a case")
        chosen = self._selection()
        if not len(chosen):
            raise WorkbenchError("tick at least one face track (part 3) or face drawn by hand (part 4) to search")
        top, threshold, mode = int(self.top.value), parse_threshold(self.threshold.value), self.mode.value
        self.runner.run(
            "Searching",
            lambda progress, cancel: self._search(case_ref, chosen, top, threshold, mode, progress, cancel),
            self._show,
            disable=self.controls,
        )

    def _search(self, case_ref: str, chosen: Selection, top: int, threshold: float | None, mode: str, progress, cancel):
        """Make the probes, search (recorded), then fetch the custody faces shown: (run, faces) or None if cancelled."""
        steps = len(chosen.track_ids) + 2
        probes = []
        for i, track_id in enumerate(chosen.track_ids):
            if cancel.is_set():
                return None
            probes.append(self.ws.probe_from_track(chosen.footage, track_id))
            progress(i + 1, steps)
        if cancel.is_set():
            return None
        run = self.ws.search(case_ref, probes + list(chosen.manual), top=top, threshold=threshold, mode=mode)
        progress(steps - 1, steps)
        faces = {}
        for candidate in run.candidates:  # the run is recorded now: finish showing it even if Cancel is clicked
            if candidate.face_id is not None and candidate.face_id not in faces:
                faces[candidate.face_id] = self.ws.custody_face(candidate.face_id, size=THUMB_PX)
        progress(steps, steps)
        return run, faces

    def _show(self, outcome) -> None:
        if outcome is None:
            self.status.warning("Search cancelled before it ran: nothing was searched or recorded.")
            return
        run, faces = outcome
        self.run = run
        old = list(self.results.children)
        self.cards = {}
        rows = []
        for probe in run.probes:
            cards = []
            for candidate in run.candidates_of(probe.probe_id):
                card_ = CandidateCard(candidate, faces.get(candidate.face_id), run.calibration)
                card_.view_button.on_click(self.status.guard("Opening the candidate")(self._compare_clicked(candidate)))
                self.cards[(probe.probe_id, candidate.subject_id)] = card_
                cards.append(card_.widget)
            listing = (
                card_grid(cards)
                if cards
                else widgets.HTML('<span class="wb-hint">No candidate reached the threshold (identification mode lists only those).</span>')
            )
            row = widgets.HBox(
                [probe_card(probe), listing], layout=widgets.Layout(align_items="flex-start", grid_gap="12px", margin="6px 0")
            )
            row.add_class("wb-probe-row")
            rows.append(row)
        self.results.children = rows
        discard(old)
        threshold = "no threshold" if run.threshold is None else f"threshold {run.threshold:.3f}"
        listed = (
            f"up to {run.top} candidates per face"
            if run.mode is SearchMode.INVESTIGATION
            else f"only candidates at or above the threshold (at most {run.top})"
        )
        version = "no threshold version set" if run.threshold_version is None else f"threshold version {run.threshold_version}"
        self.summary.value = (
            "".join(
                f'<div class="wb-search-warning" style="color:#b00020;font-weight:600;border:1px solid #b00020;padding:4px 8px;'
                f'margin:4px 0">Warning: {html.escape(w)}</div>'
                for w in run.warnings
            )
            + f"<b>Search {run.search_id}</b> in case {html.escape(run.case_ref)}: {plural(len(run.probes), 'face')} "
            f"against {run.gallery_version.get('live_faces', '?')} gallery faces, {threshold} ({version}), {run.mode.value} mode: "
            f"{listed}. Candidates are investigative leads for trained reviewers, not identifications."
            + "".join(f'<div class="wb-search-note wb-hint">{html.escape(n)}</div>' for n in run.notes)
            + _calibration_note(run)
        )
        for callback in self._searched:
            callback(run)
        above = sum(bool(c.above_threshold) for c in run.candidates)
        done = f"Search {run.search_id} recorded: {plural(len(run.candidates), 'candidate')}, {above} above the threshold."
        if run.warnings:
            self.status.warning(f"{done} It ran below the set operating threshold: see the warning above the results.")
        else:
            self.status.success(f"{done} Click 'Compare' to review one.")

    # -- opening a candidate --------------------------------------------------------------------

    def _compare_clicked(self, candidate: Candidate):
        return lambda _button=None: self.compare(candidate.probe_id, candidate.subject_id)

    def compare(self, probe_id: str, subject_id: str) -> None:
        """Open one candidate of the last search beside its probe (as its "Compare" button does)."""
        card_ = self.cards.get((probe_id, subject_id))
        if card_ is None or self.run is None:
            raise WorkbenchError(f"{subject_id} is not a candidate of the search shown")
        for other in self.cards.values():
            other.widget.remove_class("wb-selected-card")
        card_.widget.add_class("wb-selected-card")
        for callback in self._compared:
            callback(self.run, card_.candidate)
