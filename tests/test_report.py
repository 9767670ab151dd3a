"""Case report: real PDF and HTML files, read back (pypdf, an HTML parser) and rendered (pypdfium2).

Pictures are crops of InsightFace's t1.jpg (a package image); audit rows come from a real audit
log in a temporary database. Nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from html.parser import HTMLParser

import numpy as np
import pypdf
import pytest
from PIL import Image

from workbench import audit
from workbench.db import connect
from workbench.errors import WorkbenchError
from workbench.images import load_image
from workbench.cases.report import (
    CAVEAT,
    CandidateEntry,
    DecisionEntry,
    ProbeEntry,
    ReportData,
    SearchEntry,
    render_html,
    render_pdf,
    write_report,
)
from workbench.samples import sample_image
from workbench.types import SearchMode

from factories import encode

REFERENCE = "OP-2024-017"
PURPOSE = "Identify the man seen forcing the rear door at 14 Mill Lane (burglary, s.9 Theft Act 1968)"
MALICIOUS = "<script>alert(1)</script> & co"
MARKUP = "Ear shape <b>and</b> scar agree & the <i>hairline differs"
SHA = "9f2c" + "0123456789abcdef" * 3 + "a1b2c3d4e5f6"  # 64 hex characters


def _flat(text: str) -> str:
    """Whitespace collapsed: table cells wrap text onto several lines."""
    return " ".join(text.split())


# -- factories ------------------------------------------------------------------------------------


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
def audit_rows(tmp_path_factory) -> tuple[tuple[dict, ...], bool]:
    """The case's entries of a real hash-chained log (another case's entries in between)."""
    conn = connect(tmp_path_factory.mktemp("audit") / "workbench.db")
    actions = ["case.open", "probe.add", "search.run", "review.first", "review.second", "report.export"]
    for i in range(48):
        details = {"step": i, "note": MALICIOUS if i == 3 else "ok", "candidates": [f"CUST-{k:06d}" for k in range(i % 7)]}
        audit.append(conn, user=f"analyst{i % 3}", action=actions[i % len(actions)], details=details, case_ref=REFERENCE)
        audit.append(conn, user="other", action="case.open", details={"step": i}, case_ref="OTHER-CASE")
    rows = tuple(entry.as_dict() for entry in audit.entries(conn, case_ref=REFERENCE))
    return rows, audit.verify(conn).ok


def make_report(pictures: list[bytes], audit_rows, *, n_candidates: int = 8, **changes) -> ReportData:
    """A two-search case: a still (fused list) and a video track (list per probe).

    Every third candidate has no thumbnail; the second search's probe has no crop; every picture
    shown differs from the others (n_candidates <= 8).
    """
    rows, ok = audit_rows
    still = ProbeEntry(
        probe_id="doorbell.jpg#face1", source_path="/evidence/doorbell & rear <door>.jpg", source_sha256=SHA,
        bbox_xyxy=(412.4, 188.0, 498.9, 290.2), quality=0.71, crop_png=pictures[0],
    )
    track = ProbeEntry(
        probe_id="cctv.mp4#track3", source_path="/evidence/cctv.mp4", source_sha256=SHA[::-1], frame_index=2075,
        timestamp_s=83.04, start_s=80.0, end_s=85.52, bbox_xyxy=(10, 20, 60, 80), quality=0.55, crop_png=None,
    )

    def candidates(search: int, probe_id: str | None) -> tuple[CandidateEntry, ...]:
        return tuple(
            CandidateEntry(
                rank=r + 1, subject_id=f"CUST-{search}{r:05d}", score=0.612 - 0.021 * r, image_id=1000 * search + r,
                above_threshold=r < 2, probe_id=probe_id,
                thumbnail_png=None if r % 3 == 2 else pictures[1 + (search - 1) * n_candidates + r],
            )
            for r in range(n_candidates)
        )

    searches = (
        SearchEntry(search_id="S-1", time_utc="2024-05-01T10:00:00.250000+00:00", user="analyst0", pack_id="opencv-zoo@4f9a3c1e2b7d",
                    gallery_version="index 2024-04-30 #8812", top=20, threshold=0.363, mode="investigation",
                    probes=(still,), candidates=candidates(1, None)),
        SearchEntry(search_id="S-2", time_utc="2024-05-01T11:30:00+00:00", user="analyst1", pack_id="opencv-zoo@4f9a3c1e2b7d",
                    gallery_version="index 2024-04-30 #8812", top=5, threshold=None, mode="identification",
                    probes=(track,), candidates=candidates(2, "cctv.mp4#track3")),
    )
    decisions = (
        DecisionEntry(decision_id=1, search_id="S-1", subject_id="CUST-100000", rank=1, stage="first", reviewer="analyst0",
                      verdict="possible match", reason=MARKUP, time_utc="2024-05-01T10:12:30.5+00:00", status="superseded"),
        DecisionEntry(decision_id=2, search_id="S-1", subject_id="CUST-100000", rank=1, stage="first", reviewer="analyst0",
                      verdict="inconclusive", reason=MALICIOUS, time_utc="2024-05-01T10:20:00+00:00", supersedes=1, status="disputed"),
        DecisionEntry(decision_id=3, search_id="S-1", subject_id="CUST-100000", rank=1, stage="second", reviewer="sergeant.k",
                      verdict="no match", agreement="disagree", reason="Nose bridge and ear lobes differ", time_utc="2024-05-02T09:00:00+00:00", status="disputed"),
        DecisionEntry(decision_id=4, search_id="S-2", subject_id="CUST-200001", rank=2, stage="first", reviewer="analyst1",
                      verdict="no match", reason="Different jaw line", time_utc="2024-05-02T09:30:00+00:00", status="agreed"),
        DecisionEntry(decision_id=5, search_id="S-2", subject_id="CUST-200001", rank=2, stage="second", reviewer="sergeant.k",
                      verdict="no match", agreement="confirm", reason="Agree: jaw line and eyebrows differ", time_utc="2024-05-02T10:00:00+00:00", status="agreed"),
    )
    data = ReportData(
        reference=REFERENCE, offence="Burglary (dwelling)", purpose=PURPOSE, officer="DC 4471 Rahman", status="open",
        created_utc="2024-05-01T09:00:00+00:00", generated_utc="2024-06-03T08:15:00+00:00", generated_by="sergeant.k",
        searches=searches, decisions=decisions, audit=rows, audit_ok=ok, audit_note="48 entries for this case",
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


class _Reader(HTMLParser):
    """Collects tags and visible text (character references decoded) of an HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if not self._in_style:
            self.text.append(data)


def _read_html(page: str) -> _Reader:
    reader = _Reader()
    reader.feed(page)
    reader.close()
    return reader


def _pictures_shown(data: ReportData) -> list[bytes]:
    crops = [p.crop_png for s in data.searches for p in s.probes]
    thumbs = [c.thumbnail_png for s in data.searches for c in s.candidates]
    return [png for png in crops + thumbs if png is not None]


def _facts(data: ReportData) -> list[str]:
    """What a reader must find in the report text, whatever its format."""
    facts = [data.reference, data.purpose, data.offence, data.officer, CAVEAT, "no image", "0.612", "0.363", "00:01:23.040"]
    facts += ["/evidence/doorbell & rear <door>.jpg", SHA[:24], "opencv-zoo@4f9a3c1e2b7d", "index 2024-04-30 #8812", "identification"]
    facts += [c.subject_id for s in data.searches for c in s.candidates]
    facts += [text for d in data.decisions for text in (d.reviewer, d.reason, d.verdict, d.status)]
    facts += ["2024-05-01 10:12:30", "2024-05-02 10:00:00", "disagree", "confirm", "replaces #1"]
    facts += [row["action"] for row in data.audit] + [row["hash"][:12] for row in data.audit]
    return facts


# -- PDF ------------------------------------------------------------------------------------------


def test_pdf_is_a_real_pdf_with_the_reference_and_page_numbers_on_every_page(pdf, page_texts, data):
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


def test_caveat_is_on_the_first_page_and_the_last(page_texts):
    assert _flat(CAVEAT) in _flat(page_texts[0])
    assert _flat(CAVEAT) in _flat(page_texts[-1])


def test_caveat_says_what_a_candidate_is_and_is_not():
    for phrase in ("investigative lead", "not an identification", "does not identify anyone", "trained people", "not probabilities"):
        assert phrase in CAVEAT


def test_pdf_embeds_every_picture_shown(pdf, data):
    shown = _pictures_shown(data)
    embedded = {}
    for page in pdf.pages:
        for image in page.images:
            embedded[hashlib.sha256(image.data).hexdigest()] = image.image
    assert len(embedded) == len(set(shown)) == 1 + 2 * 8 - 2 * 2
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
    decision = dataclasses.replace(base.decisions[0], reason=reason)
    probe = dataclasses.replace(base.searches[0].probes[0], source_path=f"/evidence/{reason}.jpg")
    search = dataclasses.replace(base.searches[0], probes=(probe,))
    data = dataclasses.replace(base, searches=(search,), decisions=(decision,))
    text = _flat("\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render_pdf(data))).pages))
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
    page = render_html(data)
    reader = _read_html(page)
    sources = [attrs["src"] for tag, attrs in reader.tags if tag == "img"]
    assert len(sources) == len(_pictures_shown(data))
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not [attrs for tag, attrs in reader.tags if tag in ("link", "script", "iframe", "object")]
    assert any(tag == "meta" and "default-src 'none'" in attrs.get("content", "") for tag, attrs in reader.tags)


def test_html_escapes_user_text(data):
    page = render_html(data)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "Ear shape &lt;b&gt;and&lt;/b&gt; scar" in page
    assert not [tag for tag, _ in _read_html(page).tags if tag in ("script", "b", "i")]


# -- both formats ---------------------------------------------------------------------------------


def _text_of(fmt: str, data: ReportData) -> str:
    if fmt == "pdf":
        return _flat("\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render_pdf(data))).pages))
    return _flat(" ".join(_read_html(render_html(data)).text))


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_a_broken_audit_chain_is_shown(fmt, pictures, audit_rows):
    data = make_report(pictures, audit_rows, n_candidates=1, audit_ok=False, audit_note="entry 7 was changed after it was written")
    text = _text_of(fmt, data)
    assert "AUDIT CHAIN CHECK FAILED" in text and "entry 7 was changed after it was written" in text
    assert "FAILED (see section 6)" in text


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_an_empty_case_still_makes_a_report(fmt, pictures, audit_rows):
    data = make_report(pictures, audit_rows, searches=(), decisions=(), audit=(), closed_utc="2024-07-01T00:00:00Z", status="closed")
    text = _text_of(fmt, data)
    for line in ("No probes were recorded.", "No searches were run.", "No decisions were recorded.", "No audit entries", "2024-07-01 00:00:00"):
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
def test_a_failed_render_leaves_the_existing_report_untouched(tmp_path, pictures, audit_rows, data, suffix):
    out = write_report(data, tmp_path / f"case{suffix}")
    before = out.read_bytes()
    broken = pictures[0][: len(pictures[0]) // 3]  # a truncated PNG
    bad_probe = dataclasses.replace(data.searches[0].probes[0], crop_png=broken)
    bad = dataclasses.replace(data, searches=(dataclasses.replace(data.searches[0], probes=(bad_probe,)), *data.searches[1:]))
    with pytest.raises(WorkbenchError, match="probe doorbell.jpg#face1"):
        write_report(bad, out)
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == [out.name]


def test_a_new_report_replaces_the_old_one_whole(tmp_path, pictures, audit_rows):
    out = tmp_path / "case.pdf"
    write_report(make_report(pictures, audit_rows, n_candidates=1, purpose="first purpose"), out)
    write_report(make_report(pictures, audit_rows, n_candidates=1, purpose="second purpose"), out)
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out).pages)
    assert "second purpose" in text and "first purpose" not in text
    assert os.listdir(tmp_path) == ["case.pdf"]


def test_an_unwritable_target_is_a_workbench_error(tmp_path, data):
    folder = tmp_path / "taken.pdf"
    folder.mkdir()
    with pytest.raises(WorkbenchError, match="taken.pdf"):
        write_report(data, folder)
    assert os.listdir(tmp_path) == ["taken.pdf"] and not os.listdir(folder)


# -- data contract --------------------------------------------------------------------------------

_DECISION = {"decision_id": 9, "search_id": "S-1", "subject_id": "CUST-1", "rank": 1, "stage": "first", "reviewer": "a",
             "verdict": "no match", "reason": "r", "time_utc": "2024-05-01T00:00:00Z", "status": "pending"}


@pytest.mark.parametrize("changes, error", [
    ({}, None),
    ({"verdict": "match"}, "verdict must be one of 'possible match', 'no match', 'inconclusive', got 'match'"),
    ({"stage": "third"}, "stage must be one of"),
    ({"status": "done"}, "status must be one of"),
    ({"agreement": "confirm"}, "a first-stage decision has no agreement"),
    ({"stage": "second", "agreement": "maybe"}, "agreement must be one of"),
    ({"stage": "second", "agreement": "confirm"}, None),
])
def test_decisions_accept_only_the_closed_choices(changes, error):
    if error is None:
        assert DecisionEntry(**{**_DECISION, **changes}).verdict == "no match"
    else:
        with pytest.raises(ValueError, match=error):
            DecisionEntry(**{**_DECISION, **changes})


def test_searches_take_enum_modes_and_lists(pictures):
    probe = ProbeEntry(probe_id="p", source_path="x.jpg", source_sha256=SHA, bbox_xyxy=[1, 2, 3, 4])
    search = SearchEntry(search_id="S", time_utc="t", user="u", pack_id="p", gallery_version="g", top=3,
                         mode=SearchMode.INVESTIGATION, probes=[probe], candidates=[])
    assert search.mode == "investigation" and search.probes == (probe,) and search.candidates == ()
    assert probe.bbox_xyxy == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="mode must be one of 'investigation', 'identification', got 'fast'"):
        dataclasses.replace(search, mode="fast")
    with pytest.raises(ValueError, match="bbox_xyxy must have 4 values"):
        dataclasses.replace(probe, bbox_xyxy=(1, 2, 3))


def test_audit_rows_need_the_as_dict_keys(data):
    with pytest.raises(ValueError, match="lacks hash"):
        dataclasses.replace(data, audit=({"seq": 1, "time_utc": "t", "user": "u", "action": "a", "details": {}},))
