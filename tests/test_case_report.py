"""A whole case on package images: search, two-person review, report export read back."""

from __future__ import annotations

import json

import pytest
from pypdf import PdfReader

from workbench import audit
from workbench.cases.report import CAVEAT
from workbench.cases.report_data import export_report, report_data
from workbench.cli import main
from workbench.config import Settings
from workbench.db import transaction
from workbench.gallery.store import Gallery
from workbench.types import ReviewStatus, Stage

from test_cases import as_user, gallery_home, new_case, probe, run_search, store  # noqa: F401  (fixtures)
from test_report import decision_rows, table_under


def _home(cases) -> str:
    return cases.conn.execute("PRAGMA database_list").fetchone()["file"].rsplit("/", 1)[0]


@pytest.fixture
def reviewed_case(store, probe):  # noqa: F811
    """alice's verdicts on the top two candidates; bob confirms the first."""
    new_case(store)
    run = run_search(store, probe)
    alice, bob = store, as_user(store, "bob")
    top, second = run.candidates[0].subject_id, run.candidates[1].subject_id
    alice.record_first(run.search_id, top, "possible match", "same brow line & nose <shape>")
    bob.record_second(run.search_id, top, "confirm", "agree, ear lobes match")
    alice.record_first(run.search_id, second, "no match", "different chin")
    return store, run


def _candidate_rows(data, run) -> dict[str, dict[str, str]]:
    """The HTML report's candidate rows of the run's only probe, keyed by subject id."""
    table = table_under(data, f"Search {run.search_id}, probe {run.probes[0].probe_id}:")
    return {row["Subject id"]: row for row in table.records()}


def test_report_pdf_holds_what_happened(reviewed_case, tmp_path):
    cases, run = reviewed_case
    settings = Settings(home=_home(cases), user="carol")
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
    export = audit.entries(cases.conn, case_ref="OP-1")[-1]
    assert export.action == "report.export" and export.user == "carol" and export.details["sha256"] == result["sha256"]
    assert (export.details["searches"], export.details["decisions"]) == (result["searches"], result["decisions"]) == (1, 3)


def test_report_first_page_renders(reviewed_case, tmp_path):
    import pypdfium2

    cases, _ = reviewed_case
    out = export_report(Settings(home=_home(cases), user="carol"), "OP-1", tmp_path / "r.pdf")["out"]
    page = pypdfium2.PdfDocument(out)[0]
    image = page.render(scale=1.0).to_pil()
    image.save(tmp_path / "page1.png")
    darkest, lightest = image.convert("L").getextrema()
    assert image.width < image.height and lightest - darkest > 100


def test_report_data_holds_the_stores_own_objects(reviewed_case):
    cases, run = reviewed_case
    data = report_data(Settings(home=_home(cases), user="carol"), "OP-1")
    assert data.case == cases.case("OP-1") and data.searches == (cases.search(run.search_id),)
    assert data.decisions == tuple(cases.decisions(case_ref="OP-1")) and data.reviews == tuple(cases.review(run.search_id))
    assert data.generated_by == "carol" and data.audit_ok and [e.action for e in data.audit][:2] == ["case.new", "search.run"]


def test_removed_custody_record_shows_no_image(reviewed_case, tmp_path):
    cases, run = reviewed_case
    settings = Settings(home=_home(cases), user="carol")
    removed, second = run.candidates[0], run.candidates[1]
    with Gallery.open(settings) as gallery:
        gallery.remove_subject(removed.subject_id)
    data = report_data(settings, "OP-1")
    assert removed.face_id not in data.thumbnails  # the candidate stays on record, its image is gone
    assert all(data.thumbnails[c.face_id] for c in run.candidates if c is not removed)
    assert _candidate_rows(data, run)[removed.subject_id]["Custody image"] == "no image — custody record removed since the search"
    status = {(d.subject_id, d.stage): data.review_of(d).status for d in data.decisions}
    assert status[(removed.subject_id, Stage.FIRST)] is ReviewStatus.AGREED
    assert status[(second.subject_id, Stage.FIRST)] is ReviewStatus.PENDING


def test_an_unreadable_custody_file_is_named(reviewed_case, tmp_path):
    cases, run = reviewed_case
    moved = run.candidates[1]
    with transaction(cases.conn):  # the custody file was moved after enrolment
        cases.conn.execute("UPDATE custody_images SET path = ? WHERE image_id = ?", (str(tmp_path / "moved.jpg"), moved.image_id))
    data = report_data(Settings(home=_home(cases), user="carol"), "OP-1")
    assert moved.face_id in data.thumbnails and data.thumbnails[moved.face_id] is None
    assert _candidate_rows(data, run)[moved.subject_id]["Custody image"] == "no image — custody image file missing or unreadable"


def test_a_changed_first_verdict_leaves_the_old_review_superseded(reviewed_case):
    cases, run = reviewed_case
    top = run.candidates[0].subject_id
    changed = cases.record_first(run.search_id, top, "inconclusive", "second look: the light hides the ear")
    data = report_data(Settings(home=_home(cases), user="carol"), "OP-1")
    first, confirm = (d for d in data.decisions if d.subject_id == top and d.decision_id != changed.decision_id)
    rows = decision_rows(data)
    assert rows[f"#{first.decision_id}"]["Status"] == f"superseded by #{changed.decision_id}"
    stale = f"superseded: #{first.decision_id}, which it reviewed, was replaced by #{changed.decision_id}"
    assert rows[f"#{confirm.decision_id}"]["Status"] == stale
    assert rows[f"#{changed.decision_id}"]["Status"] == "pending" and not data.is_current(confirm)


def test_report_cli_html(reviewed_case, tmp_path, capsys):
    cases, run = reviewed_case
    out = tmp_path / "OP-1.html"
    assert main(["--home", _home(cases), "--user", "carol", "report", "OP-1", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    html = out.read_text()
    assert "OP-1" in html and run.candidates[0].subject_id in html and "data:image/png;base64," in html
    assert "same brow line &amp; nose &lt;shape&gt;" in html
    assert CAVEAT.split(".")[0] in html
    assert main(["--home", _home(cases), "report", "OP-404", "--out", str(tmp_path / "x.pdf")]) == 1
    assert "no case 'OP-404'" in capsys.readouterr().err
