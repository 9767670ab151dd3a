"""The reviewer's dashboard driven through its widgets, on a real demo workspace and the real engine.

No browser: buttons are clicked and fields filled from Python, actions run in the page's
background thread and the tests wait on its runner, then check what the workspace recorded and
what the status line says. The demo workspace (case DEMO-1, the demo still searched, a first
verdict by analyst1 on the top candidate) is built once per module; each test works on a copy.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from workbench import audit
from workbench.config import Settings
from workbench.demo import DEMO_CASE, build_demo_workspace
from workbench.types import Agreement, ReviewStatus
from workbench.ui.dashboard import CAVEAT
from workbench.ui.reviewer import ReviewerApp
from workbench.workspace import Workspace

WAIT_S = 120  # no action here takes near this long; a hang fails instead of blocking
FIRST_REASON = "same ear shape and hairline"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, session_home, engine) -> Path:
    """Demo workspace with one search of the demo still and analyst1's first verdict on its top candidate."""
    home = tmp_path_factory.mktemp("reviewer") / "demo"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings(home=home, user="analyst1"), engine=engine) as ws:
        built = build_demo_workspace(ws)
        run = ws.search_files(DEMO_CASE, [built["probe"]])
        top = run.candidates[0]
        ws.first_verdict(run.search_id, top.subject_id, "possible match", FIRST_REASON, probe_id=top.probe_id)
    return home


@pytest.fixture
def home(demo_home, tmp_path) -> Path:
    """A private copy of the demo workspace (custody paths still point at the module's files)."""
    return shutil.copytree(demo_home, tmp_path / "demo", symlinks=True)


def open_app(home: Path, user: str, engine) -> ReviewerApp:
    app = ReviewerApp(Workspace(Settings(home=home, user=user), engine=engine))
    finish(app)
    return app


def finish(app: ReviewerApp) -> None:
    assert app.runner.wait(WAIT_S), "the action did not finish"


def test_queue_shows_the_candidate_with_both_faces_and_the_first_decision(home, engine):
    app = open_app(home, "reviewer2", engine)
    assert app.status.kind == "info" and "1 candidate awaits a second review" in app.status.message
    assert str(home) in app.header.value and "reviewer2" in app.header.value
    assert html.escape(CAVEAT) in app.header.value

    [entry] = app.queue.entries
    assert entry.case_ref == DEMO_CASE and entry.review.first.reviewer == "analyst1"
    labels = [label for label, _ in app.queue.list.options]
    assert labels[0].startswith(f"{DEMO_CASE} · search {entry.review.search_id}")  # the heading of its case and search
    assert entry.review.subject_id in labels[1] and "possible match by analyst1" in labels[1]
    assert app.queue.selected == entry  # the first candidate is chosen on opening

    for picture in (app.compare.probe_image, app.compare.custody_image):
        assert picture.value[:2] == b"\xff\xd8" and len(picture.value) < 100_000  # a small JPEG
    assert entry.review.subject_id in app.compare.custody_caption.value
    details = app.details.widget.value
    assert "possible match" in details and html.escape(FIRST_REASON) in details and f"{entry.review.score:.3f}" in details
    assert "wb-own-decision" not in details

    app.compare.zoom.value = 640
    assert app.compare.probe_image.layout.width == app.compare.custody_image.layout.width == "640px"

    assert app.queue.list.layout.display != "none"
    assert app.queue.list.rows == len(app.queue.list.options) == 2  # a heading and its candidate, no blank rows
    app.queue.list.value = app.queue.list.options[0][1]  # choosing the heading chooses its first candidate
    assert app.queue.selected == entry


def test_confirm_records_the_second_review_and_empties_the_queue(home, engine):
    app = open_app(home, "reviewer2", engine)
    entry = app.queue.selected

    app.decision.confirm_button.click()  # no reason yet: refused by the workspace, said plainly
    finish(app)
    assert app.status.kind == "error" and "every decision needs a written reason" in app.status.message
    assert app.queue.entries == [entry] and not app.decision.confirm_button.disabled

    app.decision.reason.value = "agree: ear shape and the hairline match"
    app.decision.confirm_button.click()
    finish(app)
    assert app.status.kind == "success", app.status.message
    assert "confirmed analyst1's first decision 'possible match'" in app.status.message
    assert app.queue.entries == [] and app.queue.list.options == ()
    assert "Nothing awaits a second review" in app.queue.summary.value
    assert app.queue.list.layout.display == "none"  # no tall blank list under that line
    assert app.decision.widget.layout.display == "none"

    review = next(r for r in app.ws.review_status(entry.review.search_id) if r.subject_id == entry.review.subject_id)
    assert review.status is ReviewStatus.AGREED
    assert review.second.reviewer == "reviewer2" and review.second.agreement is Agreement.CONFIRM
    assert review.second.reason == "agree: ear shape and the hairline match"
    assert app.decision.last_decision == review.second


def test_the_first_reviewer_cannot_give_the_second_review(home, engine):
    app = open_app(home, "analyst1", engine)
    entry = app.queue.selected
    assert "wb-own-decision" in app.details.widget.value  # warned before trying

    app.decision.reason.value = "I am sure"
    app.decision.disagree_button.click()
    finish(app)
    assert app.status.kind == "error"
    assert "analyst1 made the first decision" in app.status.message and "must be by a different person" in app.status.message
    assert not app.decision.confirm_button.disabled and not app.decision.disagree_button.disabled and not app.decision.reason.disabled
    assert app.queue.entries == [entry]
    review = next(r for r in app.ws.review_status(entry.review.search_id) if r.subject_id == entry.review.subject_id)
    assert review.second is None and review.status is ReviewStatus.PENDING


def _linked_file(link_html: str) -> tuple[str, str, bytes]:
    """(download name, MIME type, bytes) of the data: link in a DownloadLink's HTML."""
    name = re.search(r'download="([^"]+)"', link_html).group(1)
    mime, data = re.search(r'href="data:([^;]+);base64,([^"]+)"', link_html).groups()
    return name, mime, base64.b64decode(data)


def test_export_pdf_and_html_reports_and_download_them(home, engine):
    app = open_app(home, "reviewer2", engine)
    assert app.export.case.value == DEMO_CASE  # the case of the chosen candidate

    app.export.pdf_button.click()
    finish(app)
    assert app.status.kind == "success", app.status.message
    pdf = Path(app.export.last_export["out"])
    assert pdf.parent == app.ws.settings.reports_dir and pdf.suffix == ".pdf" and pdf.name.startswith(DEMO_CASE)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert DEMO_CASE in text
    name, mime, data = _linked_file(app.export.download.value)
    assert (name, mime, data) == (pdf.name, "application/pdf", pdf.read_bytes())
    assert "wb-download" in app.export.download._dom_classes

    app.export.html_button.click()
    finish(app)
    page = Path(app.export.last_export["out"])
    assert page.suffix == ".html" and page != pdf and pdf.exists()  # each export keeps its own file
    assert DEMO_CASE in page.read_text(encoding="utf-8")
    name, mime, data = _linked_file(app.export.download.value)
    assert (name, mime, data) == (page.name, "text/html", page.read_bytes())
    exports = [e for e in audit.entries(app.ws.cases.conn, case_ref=DEMO_CASE) if e.action == "report.export"]
    assert [e.details["sha256"] for e in exports] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (pdf, page)]
