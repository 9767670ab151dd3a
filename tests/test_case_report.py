"""A whole case on package images: search, two-person review, report export read back."""

from __future__ import annotations

import json

import pytest
from pypdf import PdfReader

from workbench import audit
from workbench.cases.report_data import export_report, report_data
from workbench.cli import main
from workbench.config import Settings
from workbench.gallery.store import Gallery
from workbench.cases.report import CAVEAT

from test_cases import as_user, gallery_home, new_case, probe, run_search, store  # noqa: F401  (fixtures)


def _home(store) -> str:
    return store.conn.execute("PRAGMA database_list").fetchone()["file"].rsplit("/", 1)[0]


@pytest.fixture
def reviewed_case(store, probe):  # noqa: F811
    new_case(store)
    run = run_search(store, probe)
    alice, bob = store, as_user(store, "bob")
    top, second = run.candidates[0].subject_id, run.candidates[1].subject_id
    alice.record_first(run.search_id, top, "possible match", "same brow line & nose <shape>")
    bob.record_second(run.search_id, top, "confirm", "agree, ear lobes match")
    alice.record_first(run.search_id, second, "no match", "different chin")
    return store, run


def test_report_pdf_holds_what_happened(reviewed_case, tmp_path):
    store, run = reviewed_case
    settings = Settings(home=_home(store), user="carol")
    result = export_report(settings, "OP-1", tmp_path / "OP-1.pdf")
    reader = PdfReader(result["out"])
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())  # table cells wrap lines
    assert "OP-1" in text and "identify the suspect seen on the shop CCTV" in text
    for candidate in run.candidates:
        assert candidate.subject_id in text
    assert "same brow line & nose <shape>" in text and "agree, ear lobes match" in text and "different chin" in text
    assert "alice" in text and "bob" in text
    assert "search.run" in text and "review.second" in text
    assert "investigative lead" in text.lower()
    images = sum(len(page.images) for page in reader.pages)
    assert images >= 1 + len(run.candidates)  # the probe crop and one thumbnail per candidate
    export = audit.entries(store.conn, case_ref="OP-1")[-1]
    assert export.action == "report.export" and export.user == "carol" and export.details["sha256"] == result["sha256"]


def test_report_first_page_renders(reviewed_case, tmp_path):
    import pypdfium2

    store, _ = reviewed_case
    out = export_report(Settings(home=_home(store), user="carol"), "OP-1", tmp_path / "r.pdf")["out"]
    page = pypdfium2.PdfDocument(out)[0]
    image = page.render(scale=1.0).to_pil()
    image.save(tmp_path / "page1.png")
    darkest, lightest = image.convert("L").getextrema()
    assert image.width < image.height and lightest - darkest > 100


def test_removed_custody_record_shows_no_image(reviewed_case, tmp_path):
    store, run = reviewed_case
    settings = Settings(home=_home(store), user="carol")
    removed = run.candidates[0].subject_id
    with Gallery.open(settings) as gallery:
        gallery.remove_subject(removed)
    data = report_data(settings, "OP-1")
    shown = {c.subject_id: c for s in data.searches for c in s.candidates}
    assert shown[removed].thumbnail_png is None  # the candidate stays on record, its image is gone
    assert all(c.thumbnail_png for sid, c in shown.items() if sid != removed)
    statuses = {(d.subject_id, d.stage): d.status for d in data.decisions}
    assert statuses[(removed, "first")] == "agreed" and statuses[(run.candidates[1].subject_id, "first")] == "pending"


def test_report_cli_html(reviewed_case, tmp_path, capsys):
    store, run = reviewed_case
    out = tmp_path / "OP-1.html"
    assert main(["--home", _home(store), "--user", "carol", "report", "OP-1", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    html = out.read_text()
    assert "OP-1" in html and run.candidates[0].subject_id in html and "data:image/png;base64," in html
    assert "same brow line &amp; nose &lt;shape&gt;" in html
    assert CAVEAT.split(".")[0] in html
    assert main(["--home", _home(store), "report", "OP-404", "--out", str(tmp_path / "x.pdf")]) == 1
    assert "no case 'OP-404'" in capsys.readouterr().err
