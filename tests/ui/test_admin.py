"""The gallery administration dashboard driven through its widgets, on a fresh workspace and the real engine.

No browser: fields are filled and buttons clicked from Python, actions run in the page's
background thread and the tests wait on its runner, then check the gallery, the files written
and what the page shows. The custody folder holds three of t1.jpg's people (package images),
a corrupt JPEG and a text file.
"""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import pytest

from workbench.config import Settings
from workbench.ui.admin import GalleryAdminApp
from workbench.workspace import Workspace

from conftest import face_crop
from factories import save

WAIT_S = 120  # no action here takes near this long; a hang fails instead of blocking


@pytest.fixture
def custody(tmp_path, t1_rgb, t1_faces) -> Path:
    """T1-1 ... T1-3 (one face each), and BAD holding a corrupt JPEG and a text file."""
    folder = tmp_path / "custody"
    for index, face in enumerate(t1_faces[:3], start=1):
        save(face_crop(t1_rgb, face), folder / f"T1-{index}" / "custody.png")
    (folder / "BAD").mkdir()
    (folder / "BAD" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not the rest of a JPEG")
    (folder / "BAD" / "notes.txt").write_text("custody notes, not an image\n")
    return folder


def open_app(workspace: Path, engine, user: str = "admin1") -> GalleryAdminApp:
    app = GalleryAdminApp(Workspace(Settings(home=workspace, user=user), engine=engine))
    finish(app)
    return app


def finish(app: GalleryAdminApp) -> None:
    assert app.runner.wait(WAIT_S), "the action did not finish"


def enrolled_app(workspace: Path, engine, custody: Path) -> GalleryAdminApp:
    app = open_app(workspace, engine)
    app.enrol.folder.value = str(custody)
    app.enrol.enrol_button.click()
    finish(app)
    return app


def test_enrol_a_folder_shows_counts_and_a_failures_table(workspace, engine, custody):
    app = open_app(workspace, engine)
    assert "Subjects" in app.gallery.stats.value and app.gallery.last_stats["subjects"] == 0
    assert "admin1" in app.header.value and "not identifications" in app.header.value

    app.enrol.folder.value = str(custody)
    app.enrol.enrol_button.click()
    finish(app)
    assert app.status.kind == "warning" and "3 enrolled" in app.status.message, app.status.message
    summary = app.enrol.result.summary
    assert summary.counts["enrolled"] == 3 and summary.counts["unreadable"] == 2
    counts = app.enrol.counts.value
    assert re.search(r"Enrolled now</td><td>3<", counts) and re.search(r"Unreadable[^<]*</td><td>2<", counts)

    failures = app.enrol.failures.value
    assert "corrupt.jpg" in failures and "notes.txt" in failures and failures.count("unreadable") == 2
    assert {Path(row["path"]).name for row in app.enrol.result.failures} == {"corrupt.jpg", "notes.txt"}
    report = app.enrol.result.report
    assert report.parent == app.ws.settings.reports_dir
    href = re.search(r'href="data:text/csv;base64,([^"]+)"', app.enrol.download.value).group(1)
    assert base64.b64decode(href) == report.read_bytes()

    assert app.gallery.last_stats["subjects"] == 3  # the figures follow the enrolment
    assert app.ws.gallery_stats()["faces"] == 3


def test_enrol_asks_for_one_source_and_takes_a_manifest(workspace, engine, custody, tmp_path):
    app = open_app(workspace, engine)
    app.enrol.enrol_button.click()  # nothing given
    assert app.status.kind == "error" and "give a custody folder or a manifest CSV" in app.status.message
    assert not app.runner.busy and not app.enrol.enrol_button.disabled

    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        csv.writer(handle).writerows([["subject_id", "image_path"], ["M-1", str(custody / "T1-1" / "custody.png")], ["M-2", "missing.png"]])
    app.enrol.manifest.value = str(manifest)
    app.enrol.enrol_button.click()
    finish(app)
    assert app.enrol.result.summary.counts["enrolled"] == 1
    assert "missing.png" in app.enrol.failures.value


def test_stats_rebuild_and_remove_a_subject_after_confirmation(workspace, engine, custody):
    app = enrolled_app(workspace, engine, custody)

    app.gallery.rebuild_button.click()
    finish(app)
    assert app.status.kind == "success" and "Search index rebuilt: 3 faces" in app.status.message
    assert app.gallery.last_stats["index"]["count"] == 3 and "Faces in the index" in app.gallery.stats.value

    app.gallery.subject.value = "T1-2"
    app.gallery.remove_button.click()  # asks; removes nothing yet
    assert app.gallery.confirm_box.layout.display is None and "Remove subject T1-2?" in app.gallery.question.value
    assert app.gallery.confirm_button.description == "Yes, remove T1-2"
    assert app.ws.gallery_stats()["subjects"] == 3
    app.gallery.keep_button.click()
    assert app.gallery.confirm_box.layout.display == "none" and app.ws.gallery_stats()["subjects"] == 3

    app.gallery.remove_button.click()
    app.gallery.confirm_button.click()
    finish(app)
    assert app.status.kind == "success" and "Removed subject T1-2: 1 image, 1 face" in app.status.message
    assert "Rebuild the search index" in app.status.message
    assert app.ws.gallery_stats()["subjects"] == 2 and app.gallery.last_stats["removed_since_build"] == 1

    app.gallery.subject.value = "NOBODY"
    app.gallery.remove_button.click()
    app.gallery.confirm_button.click()
    finish(app)
    assert app.status.kind == "error" and "'NOBODY' is not in the gallery" in app.status.message
    assert not app.gallery.remove_button.disabled


def test_audit_log_check_and_export(workspace, engine, custody):
    app = enrolled_app(workspace, engine, custody)
    app.audit.verify_button.click()
    finish(app)
    assert app.audit.last_check.ok and "Intact" in app.audit.result.value and app.status.kind == "success"

    app.audit.export_button.click()
    finish(app)
    path, count = app.audit.last_export
    assert path.parent == app.ws.settings.reports_dir and count >= 1
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == count and any(row["action"].startswith("gallery.") for row in rows)
    href = re.search(r'href="data:text/csv;base64,([^"]+)"', app.audit.download.value).group(1)
    assert base64.b64decode(href) == path.read_bytes()
