"""Case report: one case's probes, searches, candidate lists, decisions and audit trail, as PDF or HTML.

The report is what leaves the unit (disclosure, a file for the officer in the case), so it shows
every fact a reader needs to judge how a candidate came to be named, and says on its first page
and its last that a candidate is an investigative lead, not an identification (:data:`CAVEAT`).

Sections, in this order:

1. Case: reference, offence, purpose, officer, status, dates, who generated the report, whether
   the audit chain verified.
2. Probes: each probe's face crop, source file and sha256, time in the footage, face box, quality.
3. Searches: settings of each run (model pack, gallery version, mode, threshold, top, who, when).
4. Candidate lists, as they were shown: rank, subject id, score (3 decimals), custody image id,
   above threshold, custody image thumbnail; one table per search (and per probe when the lists
   were kept per probe).
5. Review decisions: candidate, stage, reviewer, verdict, agreement, reason, time, status.
6. Audit log: the case's entries (seq, time, user, action, details as compact JSON, short hash).
7. The caveat again.

Usage::

    data = ReportData(reference="OP-2024-017", ...)   # filled from the case store
    write_report(data, Path("reports/OP-2024-017.pdf"))  # or .html

Choices and why:

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
  named by source sha256 and custody image id. An image that is absent (None) prints as
  "no image"; bytes that do not decode are an error, because a report must not silently drop
  evidence.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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

from ..errors import WorkbenchError
from ..fileio import atomic_write

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

STAGES = ("first", "second")
VERDICTS = ("possible match", "no match", "inconclusive")
AGREEMENTS = ("confirm", "disagree")
STATUSES = ("agreed", "disputed", "pending", "superseded")
MODES = ("investigation", "identification")
AUDIT_KEYS = ("seq", "time_utc", "user", "action", "details", "hash")

NO_IMAGE = "no image"
SHORT_HASH = 12  # hex characters of an audit hash shown in the table
# C0 controls other than tab and newline: invisible, and some break PDF text or XML parsers.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# ---------------------------------------------------------------------------------------------
# Data contract: filled from the case store by the caller; frozen, keyword-only.


def _choice(value, allowed: tuple[str, ...], name: str, *, optional: bool = False) -> str | None:
    """Validate a closed choice; Enum members are taken by their value."""
    value = getattr(value, "value", value)
    if value is None and optional:
        return None
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, kw_only=True)
class ProbeEntry:
    """One probe of a search: the face searched with and where it came from.

    Attributes:
        probe_id: id of the probe within its search (e.g. ``"cctv.mp4#track3"``).
        source_path: the footage file or still, as recorded when it was loaded.
        source_sha256: sha256 of that file, 64 hex characters.
        frame_index: frame of the face shown (0-based, presentation order); None for a still.
        timestamp_s: time of that frame, seconds from the start of the footage; None for a still.
        start_s: for a track, time it is first seen, seconds; None otherwise.
        end_s: for a track, time it is last seen, seconds; None otherwise.
        bbox_xyxy: face box (x1, y1, x2, y2), pixels of the frame; None when not recorded.
        quality: face quality score in [0, 1]; None when not computed.
        crop_png: encoded face crop (PNG, or any format Pillow reads) as shown to the operator;
            None when not kept.
    """

    probe_id: str
    source_path: str
    source_sha256: str
    frame_index: int | None = None
    timestamp_s: float | None = None
    start_s: float | None = None
    end_s: float | None = None
    bbox_xyxy: tuple[float, float, float, float] | None = None
    quality: float | None = None
    crop_png: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.bbox_xyxy is not None:
            box = tuple(float(v) for v in self.bbox_xyxy)
            if len(box) != 4:
                raise ValueError(f"probe {self.probe_id!r}: bbox_xyxy must have 4 values, got {len(box)}")
            _set(self, "bbox_xyxy", box)


@dataclass(frozen=True, kw_only=True)
class CandidateEntry:
    """One row of a candidate list as it was shown.

    Attributes:
        rank: 1 = highest score.
        subject_id: custody reference of the subject.
        score: cosine similarity in [-1, 1].
        image_id: the custody image whose face gave the score; None when unknown.
        above_threshold: score reached the operating threshold; None when no threshold was set.
        thumbnail_png: encoded custody image thumbnail; None when not available (e.g. removed).
        probe_id: the probe whose list this row belongs to; None for a list fused over every
            probe of the search.
    """

    rank: int
    subject_id: str
    score: float
    image_id: int | None = None
    above_threshold: bool | None = None
    thumbnail_png: bytes | None = field(default=None, repr=False)
    probe_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class DecisionEntry:
    """One review decision on one candidate.

    Attributes:
        decision_id: store id of the decision.
        search_id: the search whose candidate list holds the candidate.
        subject_id: the candidate's subject.
        rank: the candidate's rank in that list.
        stage: ``"first"`` (the operator) or ``"second"`` (the independent reviewer).
        reviewer: user name of who decided.
        verdict: ``"possible match"``, ``"no match"`` or ``"inconclusive"``.
        agreement: second stage only: ``"confirm"`` or ``"disagree"`` with the first decision.
        reason: the reviewer's reason, free text.
        time_utc: when, ISO 8601 UTC.
        supersedes: id of the decision this one replaces; None when it replaces none.
        status: ``"agreed"``, ``"disputed"``, ``"pending"`` or ``"superseded"``.
    """

    decision_id: int
    search_id: str
    subject_id: str
    rank: int
    stage: str
    reviewer: str
    verdict: str
    agreement: str | None = None
    reason: str
    time_utc: str
    supersedes: int | None = None
    status: str

    def __post_init__(self) -> None:
        _set(self, "stage", _choice(self.stage, STAGES, "stage"))
        _set(self, "verdict", _choice(self.verdict, VERDICTS, "verdict"))
        _set(self, "agreement", _choice(self.agreement, AGREEMENTS, "agreement", optional=True))
        _set(self, "status", _choice(self.status, STATUSES, "status"))
        if self.stage == "first" and self.agreement is not None:
            raise ValueError(f"decision {self.decision_id}: a first-stage decision has no agreement, got {self.agreement!r}")


@dataclass(frozen=True, kw_only=True)
class SearchEntry:
    """One search run of the case: its settings, probes and the candidate list shown.

    Attributes:
        search_id: store id of the run.
        time_utc: when it ran, ISO 8601 UTC.
        user: who ran it.
        pack_id: model pack, ``name@sha256`` of the recogniser.
        gallery_version: gallery state searched (e.g. index manifest checksum or record count).
        top: longest list asked for.
        threshold: operating threshold (cosine); None when none was set.
        mode: ``"investigation"`` or ``"identification"``.
        probes: the probes searched, in the order shown.
        candidates: the rows shown, in the order shown (see ``CandidateEntry.probe_id``).
    """

    search_id: str
    time_utc: str
    user: str
    pack_id: str
    gallery_version: str
    top: int
    threshold: float | None = None
    mode: str
    probes: tuple[ProbeEntry, ...] = ()
    candidates: tuple[CandidateEntry, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "mode", _choice(self.mode, MODES, "mode"))
        _set(self, "probes", tuple(self.probes))
        _set(self, "candidates", tuple(self.candidates))


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything one case report shows.

    Attributes:
        reference: case reference.
        offence: offence under investigation.
        purpose: why facial recognition was used (the stated, lawful purpose).
        officer: officer in the case.
        status: case status (e.g. ``"open"``, ``"closed"``).
        created_utc: when the case was opened, ISO 8601 UTC.
        closed_utc: when it was closed; None while open.
        generated_utc: when this report was generated, ISO 8601 UTC (printed on every page).
        generated_by: who generated it.
        searches: the case's searches, in time order.
        decisions: every decision, superseded ones included, in time order.
        audit: the case's audit entries, ``AuditEntry.as_dict()`` rows (keys ``seq``, ``time_utc``,
            ``user``, ``action``, ``case_ref``, ``details``, ``hash``).
        audit_ok: whether the whole audit chain verified when the report was made.
        audit_note: what the verification found (e.g. ``VerifyResult.problem``), shown with it.
    """

    reference: str
    offence: str
    purpose: str
    officer: str
    status: str
    created_utc: str
    closed_utc: str | None = None
    generated_utc: str
    generated_by: str
    searches: tuple[SearchEntry, ...] = ()
    decisions: tuple[DecisionEntry, ...] = ()
    audit: tuple[dict, ...] = ()
    audit_ok: bool
    audit_note: str = ""

    def __post_init__(self) -> None:
        _set(self, "searches", tuple(self.searches))
        _set(self, "decisions", tuple(self.decisions))
        _set(self, "audit", tuple(self.audit))
        for row in self.audit:
            missing = [key for key in AUDIT_KEYS if key not in row]
            if missing:
                raise ValueError(f"audit rows need keys {', '.join(AUDIT_KEYS)}; row {row.get('seq')!r} lacks {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------
# Neutral layout: what the report says, before any markup.


@dataclass(frozen=True)
class _Picture:
    """A picture ready to embed: re-encoded PNG, its size in pixels, and its alt text."""

    png: bytes
    width_px: int
    height_px: int
    alt: str


Cell = str | _Picture | None  # None: a picture cell with no image


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


def _picture(data: bytes | None, alt: str) -> _Picture | None:
    """Decode, downscale to IMAGE_MAX_PX and re-encode as RGB PNG; None stays None.

    Raises:
        WorkbenchError: the bytes are not a readable image (named by ``alt``).
    """
    if data is None:
        return None
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


def _time(text: str | None) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` in UTC (naive times are taken as UTC).

    Whole seconds keep narrow cells to two lines; text that is not ISO 8601 is shown as recorded.
    """
    if not text:
        return "—"
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


def _number(value: float | None, empty: str = "—") -> str:
    return empty if value is None else f"{value:.3f}"


def _yes_no(value: bool | None) -> str:
    return "no threshold" if value is None else ("yes" if value else "no")


def _case_block(data: ReportData) -> _Table:
    audit = "verified" if data.audit_ok else "FAILED (see section 6)"
    rows = (
        ("Case reference", data.reference),
        ("Offence", data.offence),
        ("Purpose", data.purpose),
        ("Officer in the case", data.officer),
        ("Status", data.status),
        ("Opened (UTC)", _time(data.created_utc)),
        ("Closed (UTC)", _time(data.closed_utc) if data.closed_utc else "open"),
        ("Searches / decisions", f"{len(data.searches)} / {len(data.decisions)}"),
        ("Audit log check", audit),
        ("Report generated", f"{_time(data.generated_utc)} by {data.generated_by}"),
    )
    return _Table((), (45, 135), rows)


def _probe_time(probe: ProbeEntry) -> str:
    lines = []
    if probe.timestamp_s is not None:
        frame = f" (frame {probe.frame_index})" if probe.frame_index is not None else ""
        lines.append(f"shown {_clock(probe.timestamp_s)}{frame}")
    elif probe.frame_index is not None:
        lines.append(f"frame {probe.frame_index}")
    if probe.start_s is not None or probe.end_s is not None:
        start = _clock(probe.start_s) if probe.start_s is not None else "?"
        end = _clock(probe.end_s) if probe.end_s is not None else "?"
        lines.append(f"track {start} – {end}")
    return "\n".join(lines) or "still image"


def _probe_face(probe: ProbeEntry) -> str:
    box = "box not recorded"
    if probe.bbox_xyxy is not None:
        x1, y1, x2, y2 = (round(v) for v in probe.bbox_xyxy)
        box = f"box {x1},{y1} – {x2},{y2} px"
    return f"{box}\nquality {_number(probe.quality, 'not computed')}"


def _probes_table(data: ReportData) -> _Table | None:
    rows = tuple(
        (
            _picture(p.crop_png, f"search {s.search_id}, probe {p.probe_id}: face crop"),
            f"search {s.search_id}\nprobe {p.probe_id}",
            f"{p.source_path}\nsha256 {p.source_sha256}",
            _probe_time(p),
            _probe_face(p),
        )
        for s in data.searches
        for p in s.probes
    )
    columns = ("Face crop", "Search / probe", "Source file and sha256", "Time in footage", "Face box, quality")
    return _Table(columns, (30, 30, 62, 32, 26), rows, picture_mm=26) if rows else None


def _searches_table(data: ReportData) -> _Table | None:
    rows = tuple(
        (s.search_id, _time(s.time_utc), s.user, s.pack_id, s.gallery_version, s.mode, _number(s.threshold, "none"), str(s.top))
        for s in data.searches
    )
    columns = ("Search", "Time (UTC)", "User", "Model pack", "Gallery version", "Mode", "Threshold", "Top")
    return _Table(columns, (18, 19, 18, 48, 29, 21, 18, 9), rows) if rows else None


def _candidate_groups(search: SearchEntry) -> list[tuple[str | None, list[CandidateEntry]]]:
    """The rows of a search split by probe_id, in order of first appearance."""
    groups: dict[str | None, list[CandidateEntry]] = {}
    for candidate in search.candidates:
        groups.setdefault(candidate.probe_id, []).append(candidate)
    return list(groups.items())


def _candidate_table(search: SearchEntry, rows: list[CandidateEntry]) -> _Table:
    cells = tuple(
        (
            str(c.rank),
            c.subject_id,
            f"{c.score:.3f}",
            "—" if c.image_id is None else str(c.image_id),
            _yes_no(c.above_threshold),
            _picture(c.thumbnail_png, f"search {search.search_id}, rank {c.rank}, subject {c.subject_id}: custody image"),
        )
        for c in rows
    )
    columns = ("Rank", "Subject id", "Score", "Custody image id", "Above threshold", "Custody image")
    return _Table(columns, (14, 58, 20, 28, 28, 32), cells, picture_mm=20)


def _candidate_blocks(data: ReportData) -> list[_Block]:
    blocks = []
    for search in data.searches:
        groups = _candidate_groups(search)
        if not groups:
            blocks.append(_Block("h2", f"Search {search.search_id}"))
            blocks.append(_Block("p", "No candidates were shown."))
        for probe_id, rows in groups:
            scope = "fused over all probes" if probe_id is None else f"probe {probe_id}"
            blocks.append(_Block("h2", f"Search {search.search_id}, {scope}: {len(rows)} candidates"))
            blocks.append(_Block("table", table=_candidate_table(search, rows)))
    return blocks


def _decisions_table(data: ReportData) -> _Table | None:
    rows = tuple(
        (
            f"#{d.decision_id}" + (f"\nreplaces #{d.supersedes}" if d.supersedes is not None else ""),
            f"{d.subject_id}\nsearch {d.search_id}, rank {d.rank}",
            d.stage,
            d.reviewer,
            d.verdict,
            d.agreement or "—",
            d.reason,
            _time(d.time_utc),
            d.status,
        )
        for d in data.decisions
    )
    columns = ("Decision", "Candidate", "Stage", "Reviewer", "Verdict", "Agreement", "Reason", "Time (UTC)", "Status")
    return _Table(columns, (15, 25, 12, 18, 19, 19, 35, 19, 18), rows) if rows else None


def _details_json(details) -> str:
    # Spaces after separators let long details wrap at item boundaries in narrow cells.
    return json.dumps(details, sort_keys=True, separators=(", ", ": "), ensure_ascii=False, default=str)


def _audit_table(data: ReportData) -> _Table | None:
    rows = tuple(
        (str(a["seq"]), _time(a["time_utc"]), str(a["user"]), str(a["action"]), _details_json(a["details"]), str(a["hash"])[:SHORT_HASH])
        for a in data.audit
    )
    columns = ("Seq", "Time (UTC)", "User", "Action", "Details", "Hash")
    return _Table(columns, (10, 19, 18, 26, 86, 21), rows, mono=(4, 5)) if rows else None


def _audit_blocks(data: ReportData) -> list[_Block]:
    note = f" {data.audit_note}" if data.audit_note else ""
    if data.audit_ok:
        status = _Block("p", f"Audit chain verified: every entry links to the one before it.{note}")
    else:
        status = _Block("warning", f"AUDIT CHAIN CHECK FAILED: the log may have been altered.{note}")
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
        _Block("subtitle", f"Case {data.reference}"),
        _Block("caveat", CAVEAT),
        *_section("1. Case", _case_block(data), ""),
        *_section("2. Probes", _probes_table(data), "No probes were recorded."),
        *_section("3. Searches", _searches_table(data), "No searches were run."),
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
    if cell is None:
        return Paragraph(NO_IMAGE, styles["muted"])
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
    canvas.drawString(left, height - 11 * mm, _clip(f"Case {data.reference}: facial recognition case report", 80))
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
        title=f"Case report {data.reference}",
        author=data.generated_by,
        subject="Facial recognition case report: candidates are investigative leads, not identifications",
        creator="workbench",
    )
    try:
        doc.build(story, canvasmaker=_numbered_canvas(data))
    except LayoutError as exc:
        raise WorkbenchError(f"case {data.reference}: the PDF report cannot be laid out ({exc})") from exc
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
    if cell is None:
        return f'<td class="noimg">{NO_IMAGE}</td>'
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
    footer = f"Case {_e(data.reference)}. Generated {_e(_time(data.generated_utc))} by {_e(data.generated_by)}."
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Case report {_e(data.reference)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
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
