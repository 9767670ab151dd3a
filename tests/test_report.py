"""Case report: real PDF and HTML files, read back (pypdf, an HTML parser) and rendered (pypdfium2).

The report is built from the package's own types (Case, SearchRun with Probes and Candidates,
Decision, CandidateReview, AuditEntry) made by the small factories below. Pictures are crops of
InsightFace's t1.jpg (a package image); embeddings are random unit vectors; audit rows come from a
real audit log in a temporary database. Nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np
import pypdf
import pytest
from PIL import Image

from workbench import audit
from workbench.cases.report import CAVEAT, ReportData, render_html, render_pdf, write_report
from workbench.db import connect
from workbench.errors import WorkbenchError
from workbench.images import load_image
from workbench.samples import sample_image
from workbench.types import (
    Agreement,
    Candidate,
    CandidateReview,
    Case,
    CaseStatus,
    Decision,
    Face,
    PackId,
    Probe,
    ReviewStatus,
    SearchMode,
    SearchRun,
    Stage,
    Verdict,
)

from factories import encode

REFERENCE = "OP-2024-017"
PURPOSE = "Identify the man seen forcing the rear door at 14 Mill Lane (burglary, s.9 Theft Act 1968)"
MALICIOUS = "<script>alert(1)</script> & co"
MARKUP = "Ear shape <b>and</b> scar agree & the <i>hairline differs"
SHA = "9f2c" + "0123456789abcdef" * 3 + "a1b2c3d4e5f6"  # 64 hex characters
PACK = PackId("opencv-zoo", "a" * 64)
GALLERY = {
    "build_id": "2024-04-30T22:00:00Z", "index_sha256": "b" * 64,
    "indexed": 8800, "live_faces": 8812, "not_indexed": 12, "removed_since_build": 0,
}

STILL, MANUAL, TRACK = "doorbell.jpg#face1", "doorbell.jpg#manual@0", "cctv.mp4#track3"
REMOVED = "no image — custody record removed since the search"
UNREADABLE = "no image — custody image file missing or unreadable"


def _flat(text: str) -> str:
    """Whitespace collapsed: table cells wrap text onto several lines."""
    return " ".join(text.split())


# -- factories of the real types ------------------------------------------------------------------


def unit_vector(seed: int, dim: int = 128) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def make_face(seed: int, box=(10.0, 20.0, 60.0, 80.0)) -> Face:
    return Face(bbox_xyxy=box, landmarks=np.zeros((5, 2), np.float32), detector_score=0.9, embedding=unit_vector(seed), pack_id=PACK)


def make_probe(probe_id: str, *, n_faces: int = 1, **evidence) -> Probe:
    """A probe of ``n_faces`` faces; ``evidence`` sets source, sha256, frame, times, box, crop, manual, quality."""
    faces = tuple(make_face(1000 + i) for i in range(n_faces))
    return Probe(probe_id=probe_id, faces=faces, **{"source": f"/evidence/{probe_id}", "source_sha256": SHA, **evidence})


def make_candidates(probe: Probe, first_subject: int, n: int, first_face_id: int) -> tuple[Candidate, ...]:
    """``n`` ranked candidates of one probe, scores 0.612 falling by 0.021, the first two above threshold.

    Every third (rank 3, 6) has its custody record removed since the search; rank 6 as the store
    keeps such a row when the record went before the list was read back (no image or face id).
    """
    candidates = []
    for r in range(n):
        score = 0.612 - 0.021 * r
        gone = r == 5
        candidates.append(Candidate(
            rank=r + 1, subject_id=f"CUST-{first_subject + r:06d}", score=score,
            image_id=None if gone else 5000 + first_face_id + r, face_id=None if gone else first_face_id + r,
            above_threshold=r < 2, per_probe_scores=tuple(score - 0.05 * k for k in range(probe.n_faces)), probe_id=probe.probe_id,
        ))
    return tuple(candidates)


def make_run(search_id: int, probes: tuple[Probe, ...], candidates: tuple[Candidate, ...], **settings) -> SearchRun:
    values = {"case_ref": REFERENCE, "time_utc": "2024-05-01T10:00:00.250000+00:00", "user": "analyst0", "pack_id": PACK,
              "gallery_version": GALLERY, "top": 20, "threshold": 0.363, "mode": SearchMode.INVESTIGATION, "method": "exact",
              "replay_of": None}
    return SearchRun(search_id=search_id, probes=probes, candidates=candidates, **{**values, **settings})


def make_decision(decision_id: int, search_id: int, probe_id: str, subject_id: str, *, verdict: Verdict | None = None,
                  agreement: Agreement | None = None, reviews: int | None = None, supersedes: int | None = None,
                  reviewer: str = "analyst0", reason: str = "reason", time_utc: str = "2024-05-02T09:00:00+00:00") -> Decision:
    stage = Stage.SECOND if agreement is not None else Stage.FIRST
    return Decision(decision_id, search_id, probe_id, subject_id, stage, reviewer, verdict, agreement, reason, time_utc,
                    supersedes, reviews)


def make_reviews(runs: tuple[SearchRun, ...], current: dict[tuple, tuple]) -> tuple[CandidateReview, ...]:
    """Every candidate's review: ``current`` maps (search, probe, subject) to (first, second,
    status); any other candidate is pending with no decision."""
    reviews = []
    for run in runs:
        for c in run.candidates:
            first, second, status = current.get((run.search_id, c.probe_id, c.subject_id), (None, None, ReviewStatus.PENDING))
            reviews.append(CandidateReview(run.search_id, c.probe_id, c.rank, c.subject_id, c.score, first, second, status))
    return tuple(reviews)


def make_case(**changes) -> Case:
    values = {"reference": REFERENCE, "offence": "Burglary (dwelling)", "purpose": PURPOSE, "officer": "DC 4471 Rahman",
              "status": CaseStatus.OPEN, "created_utc": "2024-05-01T09:00:00+00:00", "created_by": "analyst0",
              "updated_utc": "2024-05-01T09:00:00+00:00"}
    return Case(**{**values, **changes})


def make_thumbnails(runs: tuple[SearchRun, ...], pictures: list[bytes]) -> dict[int, bytes | None]:
    """A distinct picture per candidate face, except: rank 3 lists no entry (custody record
    removed), search 2 rank 2 None (its image file cannot be read)."""
    thumbnails, next_picture = {}, 2
    for run in runs:
        for c in run.candidates:
            if c.face_id is None or c.rank == 3:
                continue
            if run.search_id == 2 and c.rank == 2:
                thumbnails[c.face_id] = None
                continue
            thumbnails[c.face_id] = pictures[next_picture]
            next_picture += 1
    return thumbnails


@pytest.fixture(scope="module")
def pictures() -> list[bytes]:
    """Eighteen distinct PNG crops of t1.jpg (windows across its row of faces), 90 to 260 px."""
    rgb = load_image(sample_image("t1"))
    height, width = rgb.shape[:2]
    crops = []
    for i in range(18):
        size = 90 + 10 * i
        x, y = (37 + 101 * i) % (width - size), (60 + 29 * i) % (height - size)
        crops.append(encode(np.ascontiguousarray(rgb[y : y + size, x : x + int(size * 0.8)])))
    return crops


@pytest.fixture(scope="module")
def audit_rows(tmp_path_factory) -> tuple[tuple[audit.AuditEntry, ...], bool]:
    """The case's entries of a real hash-chained log (another case's entries in between)."""
    conn = connect(tmp_path_factory.mktemp("audit") / "workbench.db")
    actions = ["case.open", "probe.add", "search.run", "review.first", "review.second", "report.export"]
    for i in range(48):
        details = {"step": i, "note": MALICIOUS if i == 3 else "ok", "candidates": [f"CUST-{k:06d}" for k in range(i % 7)]}
        audit.append(conn, user=f"analyst{i % 3}", action=actions[i % len(actions)], details=details, case_ref=REFERENCE)
        audit.append(conn, user="other", action="case.open", details={"step": i}, case_ref="OTHER-CASE")
    return tuple(audit.entries(conn, case_ref=REFERENCE)), audit.verify(conn).ok


def make_report(pictures: list[bytes], audit_rows, *, n_candidates: int = 8, **changes) -> ReportData:
    """A two-search case.

    Search 1 (investigation, threshold 0.363): a still probe with ``n_candidates`` candidates and
    a manual box probe with two. Search 2 (identification, no threshold, index): a video track of
    two fused faces, its crop not kept, ``n_candidates`` candidates. Decisions: on search 1 rank 1
    a first verdict (#1) replaced by #2, which the second reviewer disputes (#3); on search 2
    rank 2 a first verdict (#4) the second reviewer confirms (#5).
    """
    rows, ok = audit_rows
    doorbell = "/evidence/doorbell & rear <door>.jpg"
    still = make_probe(STILL, source=doorbell, bbox_xyxy=(412.4, 188.0, 498.9, 290.2), quality=0.71, crop_png=pictures[0])
    manual = make_probe(MANUAL, source=doorbell, bbox_xyxy=(100, 120, 150, 180), manual=True, crop_png=pictures[1])
    track = make_probe(TRACK, n_faces=2, source="/evidence/cctv.mp4", source_sha256=SHA[::-1], frame_index=2075, timestamp_s=83.04,
                       start_s=80.0, end_s=85.52, bbox_xyxy=(10, 20, 60, 80), quality=0.55)
    runs = (
        make_run(1, (still, manual), make_candidates(still, 100000, n_candidates, 1) + make_candidates(manual, 190000, 2, 100)),
        make_run(2, (track,), make_candidates(track, 200000, n_candidates, 200), time_utc="2024-05-01T11:30:00+00:00", user="analyst1",
                 top=5, threshold=None, mode=SearchMode.IDENTIFICATION, method="index"),
    )
    top, second = runs[0].candidates[0].subject_id, runs[1].candidates[min(1, n_candidates - 1)].subject_id
    decisions = (
        make_decision(1, 1, STILL, top, verdict=Verdict.POSSIBLE_MATCH, reason=MARKUP, time_utc="2024-05-01T10:12:30.5+00:00"),
        make_decision(2, 1, STILL, top, verdict=Verdict.INCONCLUSIVE, reason=MALICIOUS, supersedes=1, time_utc="2024-05-01T10:20:00+00:00"),
        make_decision(3, 1, STILL, top, agreement=Agreement.DISAGREE, reviews=2, reviewer="sergeant.k",
                      reason="Nose bridge and ear lobes differ"),
        make_decision(4, 2, TRACK, second, verdict=Verdict.NO_MATCH, reviewer="analyst1", reason="Different jaw line",
                      time_utc="2024-05-02T09:30:00+00:00"),
        make_decision(5, 2, TRACK, second, agreement=Agreement.CONFIRM, reviews=4, reviewer="sergeant.k",
                      reason="Agree: jaw line and eyebrows differ", time_utc="2024-05-02T10:00:00+00:00"),
    )
    reviews = make_reviews(runs, {
        (1, STILL, top): (decisions[1], decisions[2], ReviewStatus.DISPUTED),
        (2, TRACK, second): (decisions[3], decisions[4], ReviewStatus.AGREED),
    })
    data = ReportData(
        case=make_case(), searches=runs, decisions=decisions, reviews=reviews, thumbnails=make_thumbnails(runs, pictures),
        audit=rows, audit_ok=ok, audit_note="48 entries for this case",
        generated_utc="2024-06-03T08:15:00+00:00", generated_by="sergeant.k",
    )
    return dataclasses.replace(data, **changes)


@pytest.fixture(scope="module")
def data(pictures, audit_rows) -> ReportData:
    return make_report(pictures, audit_rows)


@pytest.fixture(scope="module")
def pdf_bytes(data) -> bytes:
    return render_pdf(data)


@pytest.fixture(scope="module")
def pdf(pdf_bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(pdf_bytes))


@pytest.fixture(scope="module")
def page_texts(pdf) -> list[str]:
    return [page.extract_text() for page in pdf.pages]


# -- reading the HTML back ------------------------------------------------------------------------


@dataclass
class _HtmlTable:
    """One table of the page: the heading above it, its header cells, and its rows as cell texts."""

    heading: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


class _Reader(HTMLParser):
    """Collects tags, visible text (character references decoded) and tables of an HTML page.

    A picture cell reads as ``[image: <alt>]``; cell texts have their whitespace collapsed.
    """

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.tables: list[_HtmlTable] = []
        self._in_style = False
        self._heading: list[str] | None = None
        self._last_heading = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._header_row = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_style = tag == "style"
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.tables.append(_HtmlTable(self._last_heading))
        elif tag == "tr":
            self._row, self._header_row = [], False
        elif tag in ("td", "th"):
            self._cell, self._header_row = [], self._header_row or tag == "th"
        elif tag == "img" and self._cell is not None:
            self._cell.append(f"[image: {attrs.get('alt', '')}]")

    def handle_endtag(self, tag):
        self._in_style = False
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self._last_heading, self._heading = _flat("".join(self._heading)), None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(_flat("".join(self._cell)))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            (table.columns.extend if self._header_row else table.rows.append)(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in_style:
            return
        self.text.append(data)
        for sink in (self._heading, self._cell):
            if sink is not None:
                sink.append(data)


def _read_html(page: str) -> _Reader:
    reader = _Reader()
    reader.feed(page)
    reader.close()
    return reader


def table_under(data: ReportData, heading: str) -> _HtmlTable:
    """The one table whose heading starts with ``heading`` in the HTML report of ``data``."""
    found = [t for t in _read_html(render_html(data)).tables if t.heading.startswith(heading)]
    assert len(found) == 1, [t.heading for t in _read_html(render_html(data)).tables]
    return found[0]


def decision_rows(data: ReportData) -> dict[str, dict[str, str]]:
    """Rows of the decisions table keyed by decision number (``"#3"``)."""
    return {row["Decision"].split()[0]: row for row in table_under(data, "5. Review decisions").records()}


def _pictures_shown(data: ReportData) -> list[bytes]:
    crops = [p.crop_png for run in data.searches for p in run.probes]
    thumbs = [data.thumbnails.get(c.face_id) for run in data.searches for c in run.candidates]
    return [png for png in crops + thumbs if png is not None]


def _facts(data: ReportData) -> list[str]:
    """What a reader must find in the report text, whatever its format."""
    case = data.case
    facts = [case.reference, case.purpose, case.offence, case.officer, CAVEAT, REMOVED, UNREADABLE, "the crop was not kept with the search"]
    facts += ["0.612", "0.363", "none set", "00:01:23.040", "00:01:25.520", "still image", "manual (box drawn by a person)", "2 faces"]
    facts += ["/evidence/doorbell & rear <door>.jpg", SHA[:24], str(PACK)[:24], "live_faces: 8812", "identification", "index"]
    facts += [c.subject_id for run in data.searches for c in run.candidates]
    facts += [text for d in data.decisions for text in (d.reviewer, d.reason)]
    facts += ["possible match", "inconclusive", "no match", "disagree", "confirm", "disputed", "agreed", "superseded by #2", "replaces #1"]
    facts += ["2024-05-01 10:12:30", "2024-05-02 10:00:00"]
    facts += [row.action for row in data.audit] + [row.hash[:12] for row in data.audit]
    return facts


def _text_of(fmt: str, data: ReportData) -> str:
    if fmt == "pdf":
        return _flat("\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render_pdf(data))).pages))
    return _flat(" ".join(_read_html(render_html(data)).text))


# -- PDF ------------------------------------------------------------------------------------------


def test_pdf_is_a_real_pdf_with_the_reference_and_page_numbers_on_every_page(pdf, page_texts):
    assert len(pdf.pages) > 1
    assert pdf.metadata.title == f"Case report {REFERENCE}"
    for number, text in enumerate(page_texts, start=1):
        assert f"Case {REFERENCE}" in text
        assert f"page {number} of {len(page_texts)}" in text
        assert "Generated 2024-06-03 08:15:00 by sergeant.k" in text
        assert "not an identification" in text


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_report_text_holds_every_fact(fmt, page_texts, data):
    text = _flat("\n".join(page_texts) if fmt == "pdf" else " ".join(_read_html(render_html(data)).text))
    missing = [fact for fact in _facts(data) if _flat(fact) not in text]
    assert not missing


def test_sections_come_in_the_order_of_the_issue(page_texts):
    text = _flat("\n".join(page_texts))
    headings = ["1. Case", "2. Probes", "3. Searches", "4. Candidate lists", "5. Review decisions", "6. Audit log", "7. Caveat"]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)


@pytest.mark.parametrize("page", [0, -1])
def test_the_caveat_on_the_first_and_last_page_says_what_a_candidate_is_and_is_not(page_texts, page):
    text = _flat(page_texts[page])
    assert _flat(CAVEAT) in text
    for phrase in ("investigative lead", "not an identification", "does not identify anyone", "trained people", "not probabilities"):
        assert phrase in text


def test_pdf_embeds_every_picture_shown(pdf, data):
    shown = _pictures_shown(data)
    embedded = {}
    for page in pdf.pages:
        for image in page.images:
            embedded[hashlib.sha256(image.data).hexdigest()] = image.image
    # 2 probe crops + 18 candidates less 4 custody records removed and 1 unreadable file
    assert len(embedded) == len(set(shown)) == 2 + 18 - 4 - 1
    assert all(min(im.size) >= 16 for im in embedded.values())


def test_first_page_renders_to_a_png(pdf_bytes, tmp_path):
    import pypdfium2  # test extra: renders PDF pages

    document = pypdfium2.PdfDocument(pdf_bytes)
    page = document[0]
    out = tmp_path / "page1.png"
    page.render(scale=1.5).to_pil().save(out)
    page.close()
    document.close()
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.shape[0] > pixels.shape[1]  # A4 portrait
    assert pixels.var() > 0


@pytest.mark.parametrize("reason, printed", [
    ("<b>bold</b> & co", "<b>bold</b> & co"),
    ("unclosed <b> and <i> & <font name='x'>", "unclosed <b> and <i> & <font name='x'>"),
    ("<para>fake paragraph</para><br/>", "<para>fake paragraph</para><br/>"),
    ("already escaped &amp; &lt;b&gt;", "already escaped &amp; &lt;b&gt;"),
    ("first line\nsecond line", "first line second line"),
    ("bell\x07 and nul\x00 removed", "bell and nul removed"),
    ("Ωμέγα, Łódź, Дмитрий", "Ωμέγα, Łódź, Дмитрий"),
])
def test_user_text_prints_literally_in_the_pdf(pictures, audit_rows, reason, printed):
    base = make_report(pictures, audit_rows, n_candidates=1, audit=())
    run = base.searches[0]
    probe = run.probes[0].replace(source=f"/evidence/{reason}.jpg")
    data = dataclasses.replace(base, searches=(dataclasses.replace(run, probes=(probe, *run.probes[1:])), *base.searches[1:]),
                               decisions=(dataclasses.replace(base.decisions[0], reason=reason),))
    text = _text_of("pdf", data)
    assert _flat(printed) in text
    assert _flat(f"/evidence/{printed}.jpg") in text


def test_a_reason_longer_than_a_page_splits_across_pages(pictures, audit_rows):
    reason = " ".join(f"word{i}" for i in range(2500))
    base = make_report(pictures, audit_rows, n_candidates=1, audit=())
    data = dataclasses.replace(base, decisions=(dataclasses.replace(base.decisions[0], reason=reason),))
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(data)))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 3
    assert "word0" in text and "word2499" in text


# -- HTML -----------------------------------------------------------------------------------------


def test_html_is_self_contained_and_embeds_pictures_as_data_uris(data):
    reader = _read_html(render_html(data))
    sources = [attrs["src"] for tag, attrs in reader.tags if tag == "img"]
    assert len(sources) == len(_pictures_shown(data))
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not [attrs for tag, attrs in reader.tags if tag in ("link", "script", "iframe", "object")]
    assert any(tag == "meta" and "default-src 'none'" in attrs.get("content", "") for tag, attrs in reader.tags)


# -- what a reader relies on, in both formats ----------------------------------------------------


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_user_text_with_markup_is_escaped_not_obeyed(fmt, data):
    if fmt == "html":
        page = render_html(data)
        assert not [tag for tag, _ in _read_html(page).tags if tag in ("script", "b", "i")]
        rows = decision_rows(data)
        assert rows["#1"]["Reason"] == MARKUP and rows["#2"]["Reason"] == MALICIOUS
        assert any(MALICIOUS in row["Details"] for row in table_under(data, "6. Audit log").records())
    else:
        text = _text_of("pdf", data)
        assert _flat(MARKUP) in text and MALICIOUS in text


def test_every_candidate_is_listed_under_its_probe_with_rank_and_score(data):
    for run in data.searches:
        for probe in run.probes:
            table = table_under(data, f"Search {run.search_id}, probe {probe.probe_id}:")
            shown = [(row["Rank"], row["Subject id"], row["Score"].split()[0]) for row in table.records()]
            assert shown == [(str(c.rank), c.subject_id, f"{c.score:.3f}") for c in run.candidates_of(probe.probe_id)]


def test_candidates_of_every_probe_are_in_the_pdf_after_its_heading(page_texts, data):
    text = _flat("\n".join(page_texts))
    for run in data.searches:
        for probe in run.probes:
            start = text.index(f"Search {run.search_id}, probe {probe.probe_id}:")
            ends = [i for i in (text.find("Search ", start + 1), text.find("5. Review decisions", start)) if i > 0]
            section = text[start : min(ends)]
            assert all(c.subject_id in section and f"{c.score:.3f}" in section for c in run.candidates_of(probe.probe_id))


def test_fused_faces_show_each_faces_score(data):
    table = table_under(data, f"Search 2, probe {TRACK}:")
    first = data.searches[1].candidates[0]
    assert table.records()[0]["Score"] == f"{first.score:.3f} per face {first.per_probe_scores[0]:.3f}, {first.per_probe_scores[1]:.3f}"


def test_missing_custody_images_say_why(data):
    rows = {row["Subject id"]: row for row in table_under(data, f"Search 2, probe {TRACK}:").records()}
    by_rank = {c.rank: c for c in data.searches[1].candidates}
    assert rows[by_rank[3].subject_id]["Custody image"] == REMOVED  # face id recorded, its custody record gone
    assert rows[by_rank[6].subject_id]["Custody image"] == REMOVED  # recorded without face id: gone before read back
    assert rows[by_rank[6].subject_id]["Custody image id"] == "custody record removed"
    assert rows[by_rank[2].subject_id]["Custody image"] == UNREADABLE
    assert rows[by_rank[1].subject_id]["Custody image"].startswith("[image: search 2, probe cctv.mp4#track3, rank 1")


def test_probes_say_what_they_are_and_what_is_missing(data):
    rows = {row["Search / probe"].split("probe ")[1]: row for row in table_under(data, "2. Probes").records()}
    assert rows[STILL]["Time in footage"] == "still image"
    assert rows[MANUAL]["Face box, quality"].startswith("manual (box drawn by a person) box 100,120 – 150,180 px")
    assert "manual" not in rows[STILL]["Face box, quality"]
    assert rows[TRACK]["Face crop"] == "no image — the crop was not kept with the search"
    assert rows[TRACK]["Time in footage"] == "shown 00:01:23.040 (frame 2075) track 00:01:20.000 – 00:01:25.520"
    assert rows[MANUAL]["Face box, quality"].endswith("quality not computed")


def test_a_probe_with_half_its_evidence_names_each_missing_part(pictures, audit_rows):
    base = make_report(pictures, audit_rows, n_candidates=1, audit=())
    run = base.searches[1]
    probe = run.probes[0].replace(source_sha256="", timestamp_s=None, end_s=None, bbox_xyxy=None)
    data = dataclasses.replace(base, searches=(base.searches[0], dataclasses.replace(run, probes=(probe,))))
    row = next(r for r in table_under(data, "2. Probes").records() if TRACK in r["Search / probe"])
    assert row["Source file and sha256"] == "/evidence/cctv.mp4 sha256 not recorded"
    assert row["Time in footage"] == "shown time not recorded (frame 2075) track 00:01:20.000 – end not recorded"
    assert row["Face box, quality"].startswith("box not recorded")


def test_a_second_decision_shows_the_verdict_it_reviewed(data):
    rows = decision_rows(data)
    assert rows["#3"]["Verdict"] == "inconclusive (first decision #2)" and rows["#3"]["Agreement"] == "disagree"
    assert rows["#5"]["Verdict"] == "no match (first decision #4)" and rows["#5"]["Agreement"] == "confirm"
    assert rows["#4"]["Agreement"] == "not applicable (first stage)"


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_a_missing_first_decision_is_named_not_replaced(fmt, pictures, audit_rows):
    base = make_report(pictures, audit_rows, audit=())
    orphan = dataclasses.replace(base.decisions[4], reviews=99)
    data = dataclasses.replace(base, decisions=(*base.decisions[:4], orphan))
    assert "first decision #99 not found" in _text_of(fmt, data)
    if fmt == "html":
        row = decision_rows(data)["#5"]
        assert row["Verdict"] == "first decision #99 not found"
        assert not any(v.value in row["Verdict"] for v in Verdict)


def test_decision_status_is_the_candidates_review_or_what_superseded_it(data):
    rows = decision_rows(data)
    assert {n: rows[n]["Status"] for n in ("#2", "#3", "#4", "#5")} == {"#2": "disputed", "#3": "disputed", "#4": "agreed", "#5": "agreed"}
    assert rows["#1"]["Status"] == "superseded by #2"
    assert rows["#2"]["Decision"] == "#2 replaces #1"
    assert rows["#4"]["Candidate"] == f"{data.decisions[3].subject_id} search 2 probe {TRACK} rank 2"


def test_a_second_decision_on_a_replaced_first_decision_no_longer_counts(data):
    """The first reviewer changed #4 after #5 confirmed it: #5 reviewed a verdict that no longer stands."""
    changed = make_decision(6, 2, TRACK, data.decisions[3].subject_id, verdict=Verdict.INCONCLUSIVE, supersedes=4, reviewer="analyst1")
    reopened = {"first": changed, "second": None, "status": ReviewStatus.PENDING}
    reviews = tuple(dataclasses.replace(r, **reopened) if r.second == data.decisions[4] else r for r in data.reviews)
    rows = decision_rows(dataclasses.replace(data, decisions=(*data.decisions, changed), reviews=reviews))
    assert rows["#4"]["Status"] == "superseded by #6"
    assert rows["#5"]["Status"] == "superseded: #4, which it reviewed, was replaced by #6"
    assert rows["#6"]["Status"] == "pending"


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_a_broken_audit_chain_is_shown(fmt, pictures, audit_rows):
    data = make_report(pictures, audit_rows, n_candidates=1, audit_ok=False, audit_note="entry 7 was changed after it was written")
    text = _text_of(fmt, data)
    assert "AUDIT CHAIN CHECK FAILED" in text and "entry 7 was changed after it was written" in text
    assert "FAILED (see section 6)" in text


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_an_empty_case_still_makes_a_report(fmt, pictures, audit_rows):
    closed = make_case(status=CaseStatus.CLOSED, updated_utc="2024-07-01T00:00:00Z")
    data = make_report(pictures, audit_rows, case=closed, searches=(), decisions=(), reviews=(), thumbnails={}, audit=())
    text = _text_of(fmt, data)
    empty = ("No probes were recorded.", "No searches were run.", "No decisions were recorded.", "No audit entries")
    for line in (*empty, "2024-07-01 00:00:00", "closed"):
        assert line in text
    assert text.count(_flat(CAVEAT)) == 2


# -- writing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, magic", [
    ("case.pdf", b"%PDF-"),
    ("CASE.PDF", b"%PDF-"),
    ("case.html", b"<!DOCTYPE html>"),
    ("case.htm", b"<!DOCTYPE html>"),
    ("case.txt", None),
    ("case", None),
    ("case.pdf.part", None),
    ("case.docx", None),
])
def test_write_report_chooses_the_format_by_suffix(tmp_path, data, name, magic):
    out = tmp_path / "reports" / name
    if magic is None:
        with pytest.raises(WorkbenchError, match=str(out)):
            write_report(data, out)
        assert not out.exists()
        return
    assert write_report(data, out) == out
    assert out.read_bytes().startswith(magic)
    assert sorted(os.listdir(out.parent)) == [name]
    assert out.stat().st_mode & 0o077 == 0  # custody images: owner only


@pytest.mark.parametrize("suffix", [".pdf", ".html"])
def test_a_failed_render_leaves_the_existing_report_untouched(tmp_path, pictures, data, suffix):
    out = write_report(data, tmp_path / f"case{suffix}")
    before = out.read_bytes()
    run = data.searches[0]
    broken = run.probes[0].replace(crop_png=pictures[0][: len(pictures[0]) // 3])  # a truncated PNG
    bad = dataclasses.replace(data, searches=(dataclasses.replace(run, probes=(broken, *run.probes[1:])), *data.searches[1:]))
    with pytest.raises(WorkbenchError, match=f"probe {STILL}"):
        write_report(bad, out)
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == [out.name]


def test_a_new_report_replaces_the_old_one_whole(tmp_path, pictures, audit_rows):
    out = tmp_path / "case.pdf"
    write_report(make_report(pictures, audit_rows, n_candidates=1, case=make_case(purpose="first purpose")), out)
    write_report(make_report(pictures, audit_rows, n_candidates=1, case=make_case(purpose="second purpose")), out)
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out).pages)
    assert "second purpose" in text and "first purpose" not in text
    assert os.listdir(tmp_path) == ["case.pdf"]


def test_an_unwritable_target_is_a_workbench_error(tmp_path, data):
    folder = tmp_path / "taken.pdf"
    folder.mkdir()
    with pytest.raises(WorkbenchError, match="taken.pdf"):
        write_report(data, folder)
    assert os.listdir(tmp_path) == ["taken.pdf"] and not os.listdir(folder)


# -- one case per report --------------------------------------------------------------------------


def test_a_report_refuses_searches_of_another_case(data):
    other = dataclasses.replace(data.searches[0], case_ref="OTHER-CASE")
    with pytest.raises(ValueError, match=r"searches \[1\] belong to another case"):
        dataclasses.replace(data, searches=(other, data.searches[1]))


def test_a_report_refuses_decisions_on_searches_it_does_not_show(data):
    with pytest.raises(ValueError, match=r"decisions on searches \[2\]"):
        dataclasses.replace(data, searches=data.searches[:1])
