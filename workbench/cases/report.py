"""Case report: one case's probes, searches, candidate lists, decisions and audit trail, as PDF or HTML.

The report is what leaves the unit (disclosure, a file for the officer in the case), so it shows
every fact a reader needs to judge how a candidate came to be named, and says on its first page
and its last that a candidate is an investigative lead, not an identification (:data:`CAVEAT`).

Sections, in this order:

1. Case: reference, offence, purpose, officer, status, dates, who generated the report, whether
   the audit verified (chain, rows and checkpoint agree; section 6 names the checkpoint).
2. Probes: each probe's face crop, source file and sha256, time in the footage, face box (and
   whether a person drew it), quality.
3. Searches: settings of each run (model pack, gallery version, mode, method, threshold and the
   operating threshold version in force, top, who, when, which search it replayed), then each
   run's warnings (searched below the set operating point) and notes (no version set), and how
   the estimated false match rates were calibrated (with the bias duplicates under two ids give).
4. Candidate lists, as they were shown: rank, subject id, score (3 decimals; per face when the
   probe fused several), how often unrelated faces score that high (the estimated false match
   rate, from the gallery's calibration), custody image id, above threshold, custody image
   thumbnail; one table per probe of each search, a search's warnings repeated above its lists.
5. Review decisions: candidate (search, probe, rank), stage, reviewer, verdict (for a second
   decision, the first verdict it reviewed), agreement, reason, time, status.
6. Audit log: the case's entries (seq, time, user, action, details as compact JSON, short hash).
7. The caveat again.

Usage::

    data = report_data(settings, "OP-2024-017")           # workbench.cases.report_data
    write_report(data, Path("reports/OP-2024-017.pdf"))  # or .html

Choices and why:

* :class:`ReportData` holds the store's own objects (:class:`~workbench.types.Case`,
  :class:`~workbench.types.SearchRun` with its probes and candidates,
  :class:`~workbench.types.Decision`, :class:`~workbench.types.CandidateReview`,
  :class:`~workbench.audit.AuditEntry`): no copies in between that could drift from them.
* Nothing missing is papered over. A disclosure reader must tell "no" from "not known", so an
  absent value prints what is missing and, where known, why ("first decision #7 not found",
  "no image — custody record removed since the search", "sha256 not recorded"); no default
  verdict, rank or time ever stands in for one that is not there.
* The PDF is built with ReportLab platypus: pure Python, no system libraries (WeasyPrint needs
  Pango), real text (selectable, searchable, extractable by pdftotext or pypdf). ReportLab is
  imported in this module only.
* Both formats are made from one neutral layout (:func:`_layout`: blocks of headings, paragraphs
  and tables of plain strings and pictures), so the PDF and the HTML cannot drift apart. Each
  renderer escapes every string for its own markup at one place (:func:`_pdf_markup`,
  :func:`_e`): reasons and paths typed by users never become markup.
* Fonts: DejaVu Sans, shipped inside matplotlib (a dependency), embedded as subsets so names in
  Latin, Greek and Cyrillic scripts print; Bitstream Vera shipped with ReportLab if it is absent.
* Pictures are downscaled to at most :data:`IMAGE_MAX_PX` pixels on their long side before they
  are embedded: the report shows what reviewers saw; full-resolution originals stay in the store,
  named by source sha256 and custody image id. Bytes that do not decode are an error, because a
  report must not silently drop evidence.
* A report is rendered in memory, written to a temporary file beside the target, flushed to disk
  and renamed over the target (:func:`write_report`): a failed render never touches an existing
  report, and a crash never leaves half a file. Files are created readable by their owner only
  (mode 0600): they hold custody images.
"""

from __future__ import annotations

import base64
import functools
import html
import importlib.util
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import Image as RLImage
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle
from reportlab.platypus.doctemplate import LayoutError

from ..audit import AuditEntry
from ..errors import WorkbenchError
from ..fileio import atomic_write
from ..thresholds import DUPLICATES_CAVEAT, fmr_short
from ..types import Candidate, CandidateReview, Case, Decision, Probe, SearchRun, Stage

CAVEAT = (
    "A candidate in this report is an investigative lead, not an identification. The system does "
    "not identify anyone: it ranks custody images by how similar their faces are to a probe face. "
    "Every decision recorded here was made by trained people, and any identification rests on "
    "further investigation and evidence. Similarity scores are cosine similarities between face "
    "embeddings; they are not probabilities and do not measure the likelihood that two images "
    "show the same person."
)

#: long side, pixels, of pictures embedded in a report (about 300 dpi at the largest size shown).
IMAGE_MAX_PX = 320

# What the report prints where a value is absent: what is missing and why, never a stand-in.
CUSTODY_REMOVED = "no image — custody record removed since the search"
CUSTODY_UNREADABLE = "no image — custody image file missing or unreadable"
CROP_NOT_KEPT = "no image — the crop was not kept with the search"
CROP_PURGED = "no image — purged under the retention rule after the case was archived (see the audit trail)"
STILL_IMAGE = "still image"
MANUAL_BOX = "manual (box drawn by a person)"

SHORT_HASH = 12  # hex characters of an audit hash shown in the table
# C0 controls other than tab and newline: invisible, and some break PDF text or XML parsers.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# ---------------------------------------------------------------------------------------------
# Data: the store's own objects, gathered by workbench.cases.report_data.

#: (search id, probe id, subject id): one candidate of one recorded list.
CandidateKey = tuple[int, str | None, str]


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything one case report shows, as read from the workspace when the report was made.

    Attributes:
        case: the case.
        searches: its recorded searches in time order, each with its probes (evidence and crop)
            and the candidate lists exactly as shown.
        decisions: every decision on those candidates, superseded ones included, oldest first.
        reviews: where the review of each candidate stands now (``CaseStore.review``): its status
            and its current first and second decisions. A decision that is neither no longer
            counts (it was superseded).
        thumbnails: custody face thumbnails (PNG bytes) keyed by ``Candidate.face_id``, for every
            face whose custody record still exists; None when the record exists but its image
            file cannot be read. A face id with no entry had its custody record removed since
            the search (the report says so; it never guesses an image).
        audit: the case's audit entries, in order.
        audit_ok: whether the whole workspace audit chain verified when the report was made.
        audit_note: what the verification found, printed with it.
        generated_utc: when this report was generated, ISO 8601 UTC (printed on every page).
        generated_by: who generated it.

    Raises:
        ValueError: a search of another case, or a decision on a search the report does not show
            (a report covers one case: anything else would disclose another investigation).
    """

    case: Case
    searches: tuple[SearchRun, ...] = ()
    decisions: tuple[Decision, ...] = ()
    reviews: tuple[CandidateReview, ...] = ()
    thumbnails: Mapping[int, bytes | None] = field(default_factory=dict, repr=False)
    audit: tuple[AuditEntry, ...] = ()
    audit_ok: bool
    audit_note: str = ""
    generated_utc: str
    generated_by: str

    def __post_init__(self) -> None:
        for name in ("searches", "decisions", "reviews", "audit"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "thumbnails", MappingProxyType(dict(self.thumbnails)))
        self._check_one_case()

    def _check_one_case(self) -> None:
        reference = self.case.reference
        foreign = sorted(run.search_id for run in self.searches if run.case_ref != reference)
        if foreign:
            raise ValueError(f"case {reference!r} report: searches {foreign} belong to another case")
        shown = {run.search_id for run in self.searches}
        unshown = sorted({d.search_id for d in self.decisions} - shown)
        if unshown:
            raise ValueError(f"case {reference!r} report: decisions on searches {unshown} that the report does not show")

    # -- lookups (indexes built once per report) --------------------------------------------------

    @functools.cached_property
    def _by_id(self) -> dict[int, Decision]:
        return {d.decision_id: d for d in self.decisions}

    @functools.cached_property
    def _successor(self) -> dict[int, Decision]:
        return {d.supersedes: d for d in self.decisions if d.supersedes is not None}

    @functools.cached_property
    def _review_of(self) -> dict[CandidateKey, CandidateReview]:
        return {(r.search_id, r.probe_id, r.subject_id): r for r in self.reviews}

    @functools.cached_property
    def _candidate_of(self) -> dict[CandidateKey, Candidate]:
        return {(run.search_id, c.probe_id, c.subject_id): c for run in self.searches for c in run.candidates}

    def decision(self, decision_id: int | None) -> Decision | None:
        """The decision with this id, or None when the report holds none (or the id is None)."""
        return None if decision_id is None else self._by_id.get(decision_id)

    def replaced_by(self, decision: Decision) -> Decision | None:
        """The decision that superseded this one, or None when none did."""
        return self._successor.get(decision.decision_id)

    def review_of(self, decision: Decision) -> CandidateReview | None:
        """Where the review of the decision's candidate stands now, or None when it is not known."""
        return self._review_of.get((decision.search_id, decision.probe_id, decision.subject_id))

    def candidate_of(self, decision: Decision) -> Candidate | None:
        """The candidate the decision is about, as shown on its list, or None when not on it."""
        return self._candidate_of.get((decision.search_id, decision.probe_id, decision.subject_id))

    def is_current(self, decision: Decision) -> bool:
        """Whether the decision still counts: it is its candidate's current first or second decision."""
        review = self.review_of(decision)
        current = () if review is None else (review.first, review.second)
        return any(d is not None and d.decision_id == decision.decision_id for d in current)


# ---------------------------------------------------------------------------------------------
# Neutral layout: what the report says, before any markup.


@dataclass(frozen=True)
class _Picture:
    """A picture ready to embed: re-encoded PNG, its size in pixels, and its alt text."""

    png: bytes
    width_px: int
    height_px: int
    alt: str


@dataclass(frozen=True)
class _Missing:
    """A picture cell without a picture: the text saying what is missing, set in grey."""

    text: str


Cell = str | _Picture | _Missing


@dataclass(frozen=True)
class _Table:
    """Rows of cells. ``columns`` empty = no header row (a label/value table, labels bold).

    ``widths_mm`` sum to at most the A4 text width (180 mm); HTML uses them as proportions.
    ``picture_mm`` is the square box a picture is fitted into; ``mono`` the indexes of columns set
    in a monospaced font (hashes, JSON).
    """

    columns: tuple[str, ...]
    widths_mm: tuple[float, ...]
    rows: tuple[tuple[Cell, ...], ...]
    picture_mm: float = 0.0
    mono: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Block:
    """One piece of the page: kind is title, subtitle, h1, h2, p, warning, caveat or table."""

    kind: str
    text: str = ""
    table: _Table | None = None


def _picture(data: bytes | None, alt: str, missing: str) -> _Picture | _Missing:
    """Decode, downscale to IMAGE_MAX_PX and re-encode as RGB PNG; no bytes give ``missing``.

    Raises:
        WorkbenchError: the bytes are not a readable image (named by ``alt``).
    """
    if data is None:
        return _Missing(missing)
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        raise WorkbenchError(f"{alt}: the stored image ({len(data)} bytes) cannot be read ({exc})") from exc
    rgb.thumbnail((IMAGE_MAX_PX, IMAGE_MAX_PX))
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return _Picture(buffer.getvalue(), rgb.width, rgb.height, alt)


def _time(text: str) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` in UTC (naive times are taken as UTC).

    Whole seconds keep narrow cells to two lines; text that is not ISO 8601 is shown as recorded.
    """
    if not text:
        return "time not recorded"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _clock(seconds: float) -> str:
    """Seconds from the start of the footage as HH:MM:SS.mmm."""
    minutes, secs = divmod(float(seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{secs:06.3f}"


def _number(value: float | None, absent: str) -> str:
    """Three decimals (scores, thresholds, quality), or ``absent`` saying why there is none."""
    return absent if value is None else f"{value:.3f}"


def _yes_no(value: bool | None) -> str:
    return "no threshold set" if value is None else ("yes" if value else "no")


def _case_block(data: ReportData) -> _Table:
    case = data.case
    rows = (
        ("Case reference", case.reference),
        ("Offence", case.offence),
        ("Purpose", case.purpose),
        ("Officer in the case", case.officer),
        ("Opened (UTC)", f"{_time(case.created_utc)} by {case.created_by}"),
        ("Status", case.status.value),
        ("Last updated (UTC)", _time(case.updated_utc)),
        ("Searches / decisions", f"{len(data.searches)} / {len(data.decisions)}"),
        ("Audit log check", "verified" if data.audit_ok else "FAILED (see section 6)"),
        ("Report generated", f"{_time(data.generated_utc)} by {data.generated_by}"),
    )
    return _Table((), (45, 135), rows)


# -- 2. probes ----------------------------------------------------------------------------------


def _shown_at(probe: Probe) -> str:
    """Time (HH:MM:SS.mmm) and frame of the face shown; "" when neither is recorded (a still)."""
    if probe.timestamp_s is None and probe.frame_index is None:
        return ""
    time = "time not recorded" if probe.timestamp_s is None else _clock(probe.timestamp_s)
    frame = "frame not recorded" if probe.frame_index is None else f"frame {probe.frame_index}"
    return f"shown {time} ({frame})"


def _track_span(probe: Probe) -> str:
    """First and last time the person is seen, HH:MM:SS.mmm; "" when neither is recorded."""
    if probe.start_s is None and probe.end_s is None:
        return ""
    start = "start not recorded" if probe.start_s is None else _clock(probe.start_s)
    end = "end not recorded" if probe.end_s is None else _clock(probe.end_s)
    return f"track {start} – {end}"


def _probe_time(probe: Probe) -> str:
    return "\n".join(line for line in (_shown_at(probe), _track_span(probe)) if line) or STILL_IMAGE


def _probe_face(probe: Probe) -> str:
    """Who drew the box, the box in pixels of its frame, how many faces fused, the quality."""
    lines = [MANUAL_BOX] if probe.manual else []
    if probe.bbox_xyxy is None:
        lines.append("box not recorded")
    else:
        x1, y1, x2, y2 = (round(v) for v in probe.bbox_xyxy)
        lines.append(f"box {x1},{y1} – {x2},{y2} px")
    if probe.n_faces > 1:
        lines.append(f"{probe.n_faces} faces, best score kept")
    lines.append(f"quality {_number(probe.quality, 'not computed')}")
    return "\n".join(lines)


def _probe_row(run: SearchRun, probe: Probe) -> tuple[Cell, ...]:
    where = f"search {run.search_id}, probe {probe.probe_id}"
    return (
        _picture(probe.crop_png, f"{where}: face crop", CROP_PURGED if probe.purged else CROP_NOT_KEPT),
        f"search {run.search_id}\nprobe {probe.probe_id}",
        f"{probe.source}\nsha256 {probe.source_sha256 or 'not recorded'}",
        _probe_time(probe),
        _probe_face(probe),
    )


def _probes_table(data: ReportData) -> _Table | None:
    rows = tuple(_probe_row(run, probe) for run in data.searches for probe in run.probes)
    columns = ("Face crop", "Search / probe", "Source file and sha256", "Time in footage", "Face box, quality")
    return _Table(columns, (30, 30, 62, 32, 26), rows, picture_mm=26) if rows else None


# -- 3. searches --------------------------------------------------------------------------------


def _gallery_version(version: dict) -> str:
    """The recorded gallery state, one ``key: value`` line each (text as is, None as "none")."""
    if not version:
        return "not recorded"
    return "\n".join(f"{key}: {_plain(value)}" for key, value in sorted(version.items()))


def _plain(value) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _search_row(run: SearchRun) -> tuple[str, ...]:
    search = str(run.search_id) + ("" if run.replay_of is None else f"\nreplay of {run.replay_of}")
    return (
        search,
        _time(run.time_utc),
        run.user,
        str(run.pack_id),
        _gallery_version(run.gallery_version),
        f"{run.mode.value}\n{run.method}",
        _number(run.threshold, "none set") + "\n" + _threshold_version(run),
        str(run.top),
    )


def _threshold_version(run: SearchRun) -> str:
    return "no threshold version set" if run.threshold_version is None else f"threshold version {run.threshold_version}"


def _calibration_basis(run: SearchRun) -> str | None:
    """How the run's estimated false match rates were made, in one sentence (None without one)."""
    c = run.calibration
    if not c:
        return None
    if c.get("missing"):
        return f"Estimated false match rates from calibration {c.get('calibration_id')}, which is no longer in the workspace."
    how = "every pair of" if c.get("exhaustive") else "a random sample of pairs of"
    return (
        f"Estimated false match rates (how often unrelated faces score this high): calibration {c.get('calibration_id')}, "
        f"{c.get('pairs', 0):,} comparisons of {how} the gallery's {c.get('faces')} faces of {c.get('subjects')} different "
        f"subjects, {_time(c.get('time_utc', ''))} UTC."
    )


def _threshold_blocks(data: ReportData) -> list[_Block]:
    """Each search's warnings and notes, then how the estimated false match rates were made."""
    blocks = []
    for run in data.searches:
        blocks += [_Block("warning", f"Warning, search {run.search_id}: {w}") for w in run.warnings]
        blocks += [_Block("p", f"Note, search {run.search_id}: {n}") for n in run.notes]
    bases = [b for b in (_calibration_basis(run) for run in data.searches) if b]
    if bases:
        blocks.append(
            _Block(
                "p",
                "An estimated false match rate says how often faces of unrelated people in the gallery scored at least a "
                f"candidate's score against each other; it is not the chance that the candidate is the person. {DUPLICATES_CAVEAT}",
            )
        )
    elif data.searches:
        blocks.append(_Block("p", "No search in this case recorded a score calibration: no estimated false match rates are shown."))
    return blocks


def _searches_table(data: ReportData) -> _Table | None:
    rows = tuple(_search_row(run) for run in data.searches)
    columns = ("Search", "Time (UTC)", "User", "Model pack", "Gallery version", "Mode, method", "Threshold", "Top")
    return _Table(columns, (16, 19, 18, 44, 35, 21, 18, 9), rows) if rows else None


# -- 4. candidate lists -------------------------------------------------------------------------


def _score(candidate: Candidate) -> str:
    """Cosine score, 3 decimals; with several fused probe faces, each face's score too."""
    text = f"{candidate.score:.3f}"
    if len(candidate.per_probe_scores) > 1:
        text += "\nper face " + ", ".join(f"{s:.3f}" for s in candidate.per_probe_scores)
    return text


def _custody_picture(data: ReportData, run: SearchRun, candidate: Candidate) -> _Picture | _Missing:
    """The custody thumbnail, or what is missing: the record (no face id or no entry) or the file."""
    if candidate.face_id is None or candidate.face_id not in data.thumbnails:
        return _Missing(CUSTODY_REMOVED)
    alt = f"search {run.search_id}, probe {candidate.probe_id}, rank {candidate.rank}, subject {candidate.subject_id}: custody image"
    return _picture(data.thumbnails[candidate.face_id], alt, CUSTODY_UNREADABLE)


def _candidate_table(data: ReportData, run: SearchRun, candidates: list[Candidate]) -> _Table:
    pairs = (run.calibration or {}).get("pairs")
    rows = tuple(
        (
            str(c.rank),
            c.subject_id,
            _score(c),
            fmr_short(c.fmr_at_score, pairs) if c.fmr_at_score is not None else "not calibrated",
            "custody record removed" if c.image_id is None else str(c.image_id),
            _yes_no(c.above_threshold),
            _custody_picture(data, run, c),
        )
        for c in candidates
    )
    columns = ("Rank", "Subject id", "Score", "Unrelated faces scoring this high", "Custody image id", "Above threshold", "Custody image")
    return _Table(columns, (11, 40, 18, 37, 20, 22, 32), rows, picture_mm=20)


def _candidate_groups(run: SearchRun) -> dict[str | None, list[Candidate]]:
    """The run's candidates by probe id: every probe in the order shown (empty lists included),
    then any candidate naming no recorded probe."""
    groups: dict[str | None, list[Candidate]] = {probe.probe_id: [] for probe in run.probes}
    for candidate in run.candidates:
        groups.setdefault(candidate.probe_id, []).append(candidate)
    return groups


def _candidate_blocks(data: ReportData) -> list[_Block]:
    blocks = []
    for run in data.searches:
        groups = _candidate_groups(run)
        blocks += [_Block("warning", f"Warning, search {run.search_id}: {w}") for w in run.warnings]
        basis = _calibration_basis(run)
        if basis and groups:
            blocks.append(_Block("p", basis))
        if not groups:
            blocks += [_Block("h2", f"Search {run.search_id}"), _Block("p", "No candidates were shown.")]
        for probe_id, candidates in groups.items():
            scope = "no probe named" if probe_id is None else f"probe {probe_id}"
            blocks.append(_Block("h2", f"Search {run.search_id}, {scope}: {len(candidates)} candidates"))
            if candidates:
                blocks.append(_Block("table", table=_candidate_table(data, run, candidates)))
            else:
                blocks.append(_Block("p", "No candidates were shown for this probe."))
    return blocks


# -- 5. review decisions ------------------------------------------------------------------------


def _decided_on(data: ReportData, decision: Decision) -> str:
    """Subject, search, probe and the rank it was shown at."""
    candidate = data.candidate_of(decision)
    rank = "not on the recorded list" if candidate is None else f"rank {candidate.rank}"
    return f"{decision.subject_id}\nsearch {decision.search_id}\nprobe {decision.probe_id}\n{rank}"


def _verdict(data: ReportData, decision: Decision) -> str:
    """A first decision's verdict; for a second decision, the first verdict it reviewed, or which
    first decision cannot be found (never a verdict standing in for it)."""
    if decision.stage is Stage.FIRST:
        return decision.verdict.value if decision.verdict else "verdict not recorded"
    if decision.reviews is None:
        return "first decision not recorded"
    reviewed = data.decision(decision.reviews)
    if reviewed is None:
        return f"first decision #{decision.reviews} not found"
    verdict = reviewed.verdict.value if reviewed.verdict else "verdict not recorded"
    return f"{verdict}\n(first decision #{reviewed.decision_id})"


def _agreement(decision: Decision) -> str:
    if decision.stage is Stage.FIRST:
        return "not applicable (first stage)"
    return decision.agreement.value if decision.agreement else "agreement not recorded"


def _superseded(data: ReportData, decision: Decision) -> str:
    """Why a decision no longer counts: the decision that replaced it, or (for a second decision)
    the replaced first decision it had reviewed."""
    later = data.replaced_by(decision)
    if later is not None:
        return f"superseded by #{later.decision_id}"
    reviewed = data.decision(decision.reviews)
    newer = None if reviewed is None else data.replaced_by(reviewed)
    if newer is not None:
        return f"superseded: #{reviewed.decision_id}, which it reviewed, was replaced by #{newer.decision_id}"
    return "superseded (the decision that replaced it is not in this report)"


def _status(data: ReportData, decision: Decision) -> str:
    """The candidate's review status while the decision counts; otherwise why it does not."""
    review = data.review_of(decision)
    if review is None:
        return "review status not found"
    return review.status.value if data.is_current(decision) else _superseded(data, decision)


def _decision_row(data: ReportData, decision: Decision) -> tuple[str, ...]:
    replaces = "" if decision.supersedes is None else f"\nreplaces #{decision.supersedes}"
    return (
        f"#{decision.decision_id}{replaces}",
        _decided_on(data, decision),
        decision.stage.value,
        decision.reviewer,
        _verdict(data, decision),
        _agreement(decision),
        decision.reason,
        _time(decision.time_utc),
        _status(data, decision),
    )


def _decisions_table(data: ReportData) -> _Table | None:
    rows = tuple(_decision_row(data, d) for d in data.decisions)
    columns = ("Decision", "Candidate", "Stage", "Reviewer", "Verdict", "Agreement", "Reason", "Time (UTC)", "Status")
    return _Table(columns, (16, 27, 13, 17, 20, 20, 29, 19, 19), rows) if rows else None


# -- 6. audit log -------------------------------------------------------------------------------


def _details_json(details) -> str:
    # Spaces after separators let long details wrap at item boundaries in narrow cells.
    return json.dumps(details, sort_keys=True, separators=(", ", ": "), ensure_ascii=False, default=str)


def _audit_table(data: ReportData) -> _Table | None:
    rows = tuple(
        (str(a.seq), _time(a.time_utc), a.user, a.action, _details_json(a.details), a.hash[:SHORT_HASH])
        for a in data.audit
    )
    columns = ("Seq", "Time (UTC)", "User", "Action", "Details", "Hash")
    return _Table(columns, (10, 19, 18, 26, 86, 21), rows, mono=(4, 5)) if rows else None


def _audit_blocks(data: ReportData) -> list[_Block]:
    note = f" {data.audit_note}" if data.audit_note else ""
    if data.audit_ok:
        status = _Block(
            "p",
            "Audit verified: every entry links to the one before it under the workspace's audit key, every recorded "
            f"case, search and decision matches its entry, and the head matches a checkpoint kept outside the workspace.{note}",
        )
    else:
        status = _Block(
            "warning",
            "AUDIT CHAIN CHECK FAILED: the log, the rows it covers and a checkpoint could not be shown to agree; "
            f"it may have been altered.{note}",
        )
    table = _audit_table(data)
    return [status, _Block("table", table=table) if table else _Block("p", "No audit entries for this case.")]


def _section(title: str, table: _Table | None, empty: str) -> list[_Block]:
    return [_Block("h1", title), _Block("table", table=table) if table else _Block("p", empty)]


def _layout(data: ReportData) -> list[_Block]:
    """The whole report as blocks, in the order of the module docstring.

    Raises:
        WorkbenchError: an image's bytes cannot be read.
    """
    return [
        _Block("title", "Facial recognition case report"),
        _Block("subtitle", f"Case {data.case.reference}"),
        _Block("caveat", CAVEAT),
        *_section("1. Case", _case_block(data), ""),
        *_section("2. Probes", _probes_table(data), "No probes were recorded."),
        *_section("3. Searches", _searches_table(data), "No searches were run."),
        *_threshold_blocks(data),
        _Block("h1", "4. Candidate lists"),
        *(_candidate_blocks(data) or [_Block("p", "No searches were run.")]),
        *_section("5. Review decisions", _decisions_table(data), "No decisions were recorded."),
        _Block("h1", "6. Audit log"),
        *_audit_blocks(data),
        _Block("h1", "7. Caveat"),
        _Block("caveat", CAVEAT),
    ]


# ---------------------------------------------------------------------------------------------
# PDF (ReportLab platypus)

_TEXT_WIDTH_MM = 180.0  # A4 width 210 mm less 15 mm margins
_INK = colors.HexColor("#1a1a1a")
_RULE = colors.HexColor("#9a9a9a")
_HEADER_BG = colors.HexColor("#e4e8ee")
_CAVEAT_BG = colors.HexColor("#fff4d6")
_CAVEAT_EDGE = colors.HexColor("#b8860b")
_WARNING = colors.HexColor("#b00020")


def _font_sets() -> list[tuple[Path, tuple[str, str, str]]]:
    """Font folders to try, best first: (folder, (regular, bold, mono) file names)."""
    found = []
    for package, relative, names in (
        ("matplotlib", "mpl-data/fonts/ttf", ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")),
        ("reportlab", "fonts", ("Vera.ttf", "VeraBd.ttf", "Vera.ttf")),
    ):
        # find_spec locates the package without importing it (matplotlib's import is slow).
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found.append((Path(next(iter(spec.submodule_search_locations))) / relative, names))
    return found


@functools.cache
def _pdf_fonts() -> tuple[str, str, str]:
    """(regular, bold, mono) font names, registered with ReportLab once per process.

    Embedded TrueType fonts print far more characters than the PDF base-14 fonts (Latin-1 only),
    which matters for names; Helvetica/Courier remain only if no TrueType font is found.
    """
    aliases = ("WB-Sans", "WB-Sans-Bold", "WB-Mono")
    for folder, names in _font_sets():
        paths = [folder / name for name in names]
        if all(path.is_file() for path in paths):
            for alias, path in zip(aliases, paths):
                pdfmetrics.registerFont(TTFont(alias, str(path)))
            return aliases
    return ("Helvetica", "Helvetica-Bold", "Courier")


def _pdf_styles() -> dict[str, ParagraphStyle]:
    regular, bold, mono = _pdf_fonts()
    base = ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=11, textColor=_INK, alignment=TA_LEFT)
    cell = ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.2)
    return {
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=17, leading=21, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontName=bold, fontSize=13, leading=16, spaceAfter=8),
        "h1": ParagraphStyle("h1", parent=base, fontName=bold, fontSize=12, leading=15, spaceBefore=10, spaceAfter=5, keepWithNext=1),
        "h2": ParagraphStyle("h2", parent=base, fontName=bold, fontSize=9.5, leading=12, spaceBefore=7, spaceAfter=3, keepWithNext=1),
        "p": ParagraphStyle("p", parent=base, spaceAfter=4),
        "warning": ParagraphStyle("warning", parent=base, fontName=bold, textColor=_WARNING, spaceAfter=4),
        "caveat": ParagraphStyle("caveat", parent=base, fontName=bold, fontSize=9.5, leading=12.5),
        "cell": cell,
        "label": ParagraphStyle("label", parent=cell, fontName=bold),
        "mono": ParagraphStyle("mono", parent=cell, fontName=mono, fontSize=6.8, leading=8.4),
        "muted": ParagraphStyle("muted", parent=cell, textColor=colors.HexColor("#6b6b6b")),
    }


def _pdf_markup(text: str) -> str:
    """Plain text as Paragraph markup: control characters dropped, & < > escaped, newlines kept."""
    clean = _CONTROL_CHARS.sub("", str(text))
    escaped = clean.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\n", "<br/>")


def _pdf_picture(picture: _Picture, box_mm: float) -> RLImage:
    """The picture fitted into a box_mm square, aspect kept."""
    scale = box_mm * mm / max(picture.width_px, picture.height_px)
    return RLImage(io.BytesIO(picture.png), width=picture.width_px * scale, height=picture.height_px * scale)


def _pdf_cell(cell: Cell, style: ParagraphStyle, table: _Table, styles: dict[str, ParagraphStyle]):
    if isinstance(cell, _Picture):
        return _pdf_picture(cell, table.picture_mm)
    if isinstance(cell, _Missing):
        return Paragraph(_pdf_markup(cell.text), styles["muted"])
    return Paragraph(_pdf_markup(cell), style)


def _pdf_table(table: _Table, styles: dict[str, ParagraphStyle]) -> Table:
    """A platypus Table; long ones split across pages, repeating their header row."""
    rows = []
    if table.columns:
        rows.append([Paragraph(_pdf_markup(c), styles["label"]) for c in table.columns])
    for row in table.rows:
        cells = []
        for index, cell in enumerate(row):
            style = styles["label"] if not table.columns and index == 0 else styles["cell"]
            if index in table.mono:
                style = styles["mono"]
            cells.append(_pdf_cell(cell, style, table, styles))
        rows.append(cells)
    # splitInRow lets a single very tall row (a long reason or audit detail) continue on the
    # next page instead of failing the whole layout.
    flowable = Table(rows, colWidths=[w * mm for w in table.widths_mm], repeatRows=1 if table.columns else 0, splitInRow=1, hAlign="LEFT")
    commands = [
        ("GRID", (0, 0), (-1, -1), 0.4, _RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if table.columns:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), _HEADER_BG))
    flowable.setStyle(TableStyle(commands))
    return flowable


def _pdf_caveat(text: str, styles: dict[str, ParagraphStyle]) -> Table:
    box = Table([[Paragraph(_pdf_markup(text), styles["caveat"])]], colWidths=[_TEXT_WIDTH_MM * mm], spaceBefore=3 * mm, spaceAfter=2 * mm)
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, _CAVEAT_EDGE),
                ("BACKGROUND", (0, 0), (-1, -1), _CAVEAT_BG),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    return box


def _pdf_story(blocks: list[_Block]) -> list:
    styles = _pdf_styles()
    story: list = []
    for block in blocks:
        if block.kind == "table":
            story.append(_pdf_table(block.table, styles))
        elif block.kind == "caveat":
            story.append(_pdf_caveat(block.text, styles))
        else:
            story.append(Paragraph(_pdf_markup(block.text), styles[block.kind]))
    return story


def _clip(text: str, limit: int) -> str:
    text = _CONTROL_CHARS.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _page_furniture(canvas, data: ReportData, page: int, pages: int) -> None:
    """Header (case reference, caveat in short) and footer (generation time, page X of Y)."""
    regular, bold, _ = _pdf_fonts()
    width, height = A4
    left, right = 15 * mm, width - 15 * mm
    canvas.saveState()
    canvas.setFillColor(_INK)
    canvas.setFont(bold, 8.5)
    canvas.drawString(left, height - 11 * mm, _clip(f"Case {data.case.reference}: facial recognition case report", 80))
    canvas.setFont(regular, 7.5)
    canvas.drawRightString(right, height - 11 * mm, "Investigative lead only, not an identification")
    canvas.setStrokeColor(_RULE)
    canvas.setLineWidth(0.5)
    canvas.line(left, height - 13 * mm, right, height - 13 * mm)
    canvas.line(left, 12 * mm, right, 12 * mm)
    canvas.drawString(left, 8 * mm, _clip(f"Generated {_time(data.generated_utc)} by {data.generated_by}", 100))
    canvas.drawRightString(right, 8 * mm, f"page {page} of {pages}")
    canvas.restoreState()


def _numbered_canvas(data: ReportData) -> type:
    """A Canvas class that holds every page until the end, so each footer can say 'of Y'."""

    class NumberedCanvas(rl_canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._held_pages: list[dict] = []

        def showPage(self):
            self._held_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._held_pages)
            for number, state in enumerate(self._held_pages, start=1):
                self.__dict__.update(state)
                _page_furniture(self, data, number, total)
                super().showPage()
            super().save()

    return NumberedCanvas


def render_pdf(data: ReportData) -> bytes:
    """The report as an A4 PDF (bytes): real text, embedded images, header and footer on every page.

    Raises:
        WorkbenchError: an image cannot be read, or the layout cannot be built.
    """
    story = _pdf_story(_layout(data))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=18 * mm,
        bottomMargin=17 * mm,
        title=f"Case report {data.case.reference}",
        author=data.generated_by,
        subject="Facial recognition case report: candidates are investigative leads, not identifications",
        creator="workbench",
    )
    try:
        doc.build(story, canvasmaker=_numbered_canvas(data))
    except LayoutError as exc:
        raise WorkbenchError(f"case {data.case.reference}: the PDF report cannot be laid out ({exc})") from exc
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# HTML (self-contained: inline CSS, images as data: URIs, no scripts allowed by its CSP)

_CSS = """
@page { size: A4; margin: 15mm; }
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; font-size: 10pt; color: #1a1a1a;
       max-width: 190mm; margin: 1em auto; line-height: 1.35; }
h1.title { font-size: 18pt; margin: 0; }
h2.subtitle { font-size: 14pt; margin: 0.2em 0 0.6em; }
h2.section { font-size: 13pt; margin: 1.2em 0 0.4em; border-bottom: 1px solid #9a9a9a; }
h3 { font-size: 10.5pt; margin: 0.9em 0 0.3em; }
.caveat { border: 2px solid #b8860b; background: #fff4d6; padding: 0.6em 0.9em; font-weight: bold;
          break-inside: avoid; }
.warning { color: #b00020; font-weight: bold; }
table { border-collapse: collapse; width: 100%; font-size: 8.5pt; margin-bottom: 0.6em; }
th, td { border: 1px solid #9a9a9a; padding: 3px 4px; vertical-align: top; text-align: left;
         white-space: pre-wrap; overflow-wrap: anywhere; }
th { background: #e4e8ee; }
table.kv td:first-child { font-weight: bold; width: 25%; }
td.mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 7.5pt; }
td.noimg { color: #6b6b6b; }
img { display: block; max-width: 100%; height: auto; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
footer { margin-top: 1.5em; font-size: 8pt; color: #555; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(text) -> str:
    """Any value as HTML text: control characters dropped, & < > " ' escaped."""
    return html.escape(_CONTROL_CHARS.sub("", str(text)), quote=True)


def _html_cell(cell: Cell, table: _Table, index: int) -> str:
    if isinstance(cell, _Picture):
        uri = "data:image/png;base64," + base64.b64encode(cell.png).decode("ascii")
        size = f"max-width:{table.picture_mm}mm;max-height:{table.picture_mm}mm"
        return f'<td><img src="{uri}" alt="{_e(cell.alt)}" style="{size}"></td>'
    if isinstance(cell, _Missing):
        return f'<td class="noimg">{_e(cell.text)}</td>'
    return f'<td class="mono">{_e(cell)}</td>' if index in table.mono else f"<td>{_e(cell)}</td>"


def _html_table(table: _Table) -> str:
    total = sum(table.widths_mm)
    cols = "".join(f'<col style="width:{100 * w / total:.1f}%">' for w in table.widths_mm)
    head = ""
    if table.columns:
        head = "<thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in table.columns) + "</tr></thead>"
    body = "".join("<tr>" + "".join(_html_cell(c, table, i) for i, c in enumerate(row)) + "</tr>" for row in table.rows)
    css_class = "" if table.columns else ' class="kv"'
    return f"<table{css_class}><colgroup>{cols}</colgroup>{head}<tbody>{body}</tbody></table>"


_HTML_TAGS = {
    "title": '<h1 class="title">{}</h1>',
    "subtitle": '<h2 class="subtitle">{}</h2>',
    "h1": '<h2 class="section">{}</h2>',
    "h2": "<h3>{}</h3>",
    "p": "<p>{}</p>",
    "warning": '<p class="warning">{}</p>',
    "caveat": '<div class="caveat" role="note">{}</div>',
}


def render_html(data: ReportData) -> str:
    """The report as one self-contained, print-friendly HTML page (str).

    Every value is escaped; images are PNG ``data:`` URIs; a Content-Security-Policy forbids
    scripts and remote loads, so the page cannot run or fetch anything even if opened in a browser.

    Raises:
        WorkbenchError: an image cannot be read.
    """
    parts = []
    for block in _layout(data):
        if block.kind == "table":
            parts.append(_html_table(block.table))
        else:
            parts.append(_HTML_TAGS[block.kind].format(_e(block.text)))
    footer = f"Case {_e(data.case.reference)}. Generated {_e(_time(data.generated_utc))} by {_e(data.generated_by)}."
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Case report {_e(data.case.reference)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + f"\n<footer>{footer}</footer>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Writing


def _format_for(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix == ".pdf":
        return "pdf"
    if suffix in (".html", ".htm"):
        return "html"
    raise WorkbenchError(f"{out}: a report file must end in .pdf, .html or .htm, got {out.suffix or 'no suffix'!r}")


def _write_atomically(out: Path, payload: bytes) -> None:
    """Write atomically (see :func:`workbench.fileio.atomic_write`), owner-only: it holds custody images."""
    try:
        atomic_write(out, payload, mode=0o600)
    except OSError as exc:
        raise WorkbenchError(f"{out}: cannot write the report ({exc.strerror or exc})") from exc


def write_report(data: ReportData, out: Path) -> Path:
    """Render the report and write it to ``out``: PDF for ``.pdf``, HTML for ``.html``/``.htm``.

    The whole report is rendered before anything is written, then written atomically: an
    existing file at ``out`` is replaced only by a complete report. Missing parent folders are
    created. Returns ``out``.

    Raises:
        WorkbenchError: ``out`` has another suffix (the message names it), an image cannot be
            read, or the file cannot be written.
    """
    out = Path(out)
    kind = _format_for(out)
    payload = render_pdf(data) if kind == "pdf" else render_html(data).encode("utf-8")
    _write_atomically(out, payload)
    return out
