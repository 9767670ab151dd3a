"""The analyst's dashboard driven through its widgets, on a real demo workspace and the real engine.

No browser: buttons are clicked and fields filled from Python, actions run in the page's
background thread and the tests wait on its runner, then check what the workspace recorded and
what the status line says. The demo workspace (8 custody subjects, case DEMO-1, the SYNTHETIC
clip in which DEMO-T1-4 walks) is built once per module; each test works on a copy.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import ipywidgets as widgets
import pytest

from workbench.config import Settings
from workbench.demo import CLIP_NAME, DEMO_CASE, build_demo_workspace
from workbench.ui.analyst import CAVEAT, AnalystApp
from workbench.ui.pictures import THUMB_PX
from workbench.workspace import Workspace

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WALKER = "DEMO-T1-4"
WAIT_S = 120  # no action of the demo takes near this long; a hang fails instead of blocking


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, session_home, engine) -> Path:
    """A demo workspace built once for the module (models linked from the session's)."""
    home = tmp_path_factory.mktemp("analyst") / "demo"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings(home=home, user="analyst1"), engine=engine) as ws:  # the analyst of these tests
        build_demo_workspace(ws)
    return home


def copy_of(demo_home: Path, target: Path) -> Path:
    """A private copy of the demo workspace (the custody paths it records still point at the original)."""
    shutil.copytree(demo_home, target, symlinks=True)
    return target


def new_app(home: Path, engine, **settings) -> AnalystApp:
    return AnalystApp(Workspace(Settings(home=home, user="analyst1", **settings), engine=engine))


def finish(app: AnalystApp) -> None:
    assert app.runner.wait(WAIT_S), "the action did not finish"


def walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def open_demo_case(app: AnalystApp) -> None:
    app.case_panel.reference.value = DEMO_CASE
    app.case_panel.open_button.click()
    finish(app)
    assert app.status.kind == "success", app.status.message


def put_in_exhibits(app: AnalystApp, source: Path, name: str) -> Path:
    target = app.ws.settings.exhibits_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    app.footage_panel.refresh_exhibits()
    app.footage_panel.choose(target)
    return target


def upload(app: AnalystApp, name: str, data: bytes) -> None:
    """What the browser does: the FileUpload's value becomes the file (ipywidgets 8 format)."""
    app.footage_panel.upload.value = (
        {"name": name, "type": "video/mp4", "size": len(data), "content": memoryview(data), "last_modified": dt.datetime.now(dt.UTC)},
    )
    finish(app)


def jpeg_size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.size


@pytest.fixture(scope="module")
def loaded_app(demo_home, engine, tmp_path_factory):
    """The dashboard with case DEMO-1 open and the demo clip loaded from the exhibits folder."""
    app = new_app(copy_of(demo_home, tmp_path_factory.mktemp("loaded") / "ws"), engine)
    open_demo_case(app)
    put_in_exhibits(app, demo_home / "demo" / "probes" / CLIP_NAME, f"cam1/{CLIP_NAME}")
    started = time.monotonic()
    app.footage_panel.extract_button.click()
    finish(app)
    app.extract_seconds = time.monotonic() - started
    assert app.status.kind == "success", app.status.message
    yield app
    app.close()


def test_nothing_but_the_case_is_enabled_until_a_case_is_open(demo_home, engine, tmp_path):
    app = new_app(copy_of(demo_home, tmp_path / "ws"), engine)
    try:
        assert CAVEAT in app.widget.children[1].value and "analyst1" in app.widget.children[1].value
        parts = [app.footage_panel, app.tracks, app.manual, app.search_panel, app.verdicts, app.record]
        enabled = [w for part in parts for w in walk(part.widget) if getattr(w, "disabled", True) is False]
        assert enabled == []
        assert app.manual.drawer is None or app.manual.drawer.view_only
        assert [r for _, r in app.case_panel.existing.options] == [DEMO_CASE]

        app.search_panel.search_button.click()  # (a disabled button cannot be clicked in the page; from Python it can)
        assert app.status.kind == "error" and "open a case first" in app.status.message

        app.case_panel.reference.value = "NO-SUCH-CASE"
        app.case_panel.open_button.click()
        finish(app)
        assert app.status.kind == "error" and "NO-SUCH-CASE" in app.status.message
        assert app.footage_panel.extract_button.disabled

        open_demo_case(app)
        assert not app.footage_panel.extract_button.disabled and not app.search_panel.search_button.disabled
        assert app.manual.add_button.disabled, "nothing to draw on before footage is loaded"
        assert DEMO_CASE in app.case_panel.summary.value
    finally:
        app.close()


def test_a_new_case_needs_offence_and_purpose(demo_home, engine, tmp_path):
    app = new_app(copy_of(demo_home, tmp_path / "ws"), engine)
    try:
        app.case_panel.reference.value = "OP-9"
        app.case_panel.create_button.click()
        assert app.status.kind == "error" and "offence" in app.status.message
        app.case_panel.offence.value, app.case_panel.purpose.value = "robbery", "identify the suspect seen on CCTV"
        app.case_panel.create_button.click()
        finish(app)
        assert app.status.kind == "success" and app.ws.case("OP-9").purpose == "identify the suspect seen on CCTV"
        assert app.case_panel.case.reference == "OP-9" and "OP-9" in [r for _, r in app.case_panel.existing.options]
    finally:
        app.close()


def test_tracks_grid_shows_the_two_people_with_small_thumbnails(loaded_app):
    app = loaded_app
    footage = app.tracks.footage
    assert sorted(app.tracks.cards) == [1, 2] and len(footage.tracks) == 2
    assert "cam1/demo_clip_SYNTHETIC.mp4 (exhibits)" in app.footage_panel.summary.value
    for track_id, card in app.tracks.cards.items():
        images = [w for w in walk(card.widget) if isinstance(w, widgets.Image)]
        assert len(images) == 1 and max(jpeg_size(images[0].value)) <= THUMB_PX and len(images[0].value) < 20_000
        assert ("wb-low-quality" in card.widget._dom_classes) == (footage.track(track_id).quality < 0.4)
        assert f"Track {track_id}" in "".join(w.value for w in walk(card.widget) if isinstance(w, widgets.HTML))

    app.tracks.cards[1].frames_button.click()
    finish(app)
    strip = [w for w in walk(app.tracks.strip) if isinstance(w, widgets.Image)]
    assert 2 <= len(strip) <= 6 and all(max(jpeg_size(w.value)) <= THUMB_PX for w in strip)
    assert "Track 1" in app.tracks.strip_title.value


def test_search_a_track_then_record_a_first_verdict(loaded_app):
    app, ws = loaded_app, loaded_app.ws
    walker_track = 1  # tracks are numbered by first appearance, then left to right: the walker starts on the left
    for track_id, card in app.tracks.cards.items():
        card.select.value = track_id == walker_track
    for _, box in app.manual.cards:
        box.value = False
    searches_before = len(ws.searches(DEMO_CASE))

    started = time.monotonic()
    app.search_panel.search_button.click()
    finish(app)
    loaded_app.search_seconds = time.monotonic() - started
    assert app.status.kind == "success", app.status.message
    run = app.search_panel.run
    assert len(ws.searches(DEMO_CASE)) == searches_before + 1 and ws.search_run(run.search_id).probes[0].probe_id == run.probes[0].probe_id
    first = run.candidates[0]
    assert first.subject_id == WALKER and first.above_threshold
    card = app.search_panel.cards[(first.probe_id, WALKER)]
    assert "wb-above-threshold" in card.widget._dom_classes and f"{first.score:.3f}" in card.widget.children[1].value
    assert len(app.search_panel.cards) == len(run.candidates)
    assert f"<td>{run.search_id}</td>" in app.record.searches.value

    card.view_button.click()
    assert app.verdicts.candidate == first and not app.verdicts.record_button.disabled
    pictures = [w for w in walk(app.verdicts.widget) if isinstance(w, widgets.Image)]
    assert len(pictures) == 2  # probe and custody face, side by side

    # No reason: the library refuses, the page says why and the form works again.
    app.verdicts.verdict.value = "possible match"
    app.verdicts.reason.value = "   "
    app.verdicts.record_button.click()
    finish(app)
    assert app.status.kind == "error" and "every decision needs a written reason" in app.status.message
    assert not app.verdicts.record_button.disabled and not app.verdicts.reason.disabled
    assert ws.decisions(DEMO_CASE) == []

    app.verdicts.reason.value = "same face shape and hairline; seen walking left to right"
    app.verdicts.record_button.click()
    finish(app)
    assert app.status.kind == "success", app.status.message
    [decision] = ws.decisions(DEMO_CASE)
    assert (decision.search_id, decision.subject_id, decision.verdict.value, decision.reviewer) == (
        run.search_id,
        WALKER,
        "possible match",
        "analyst1",
    )
    assert decision.probe_id == first.probe_id
    assert "seen walking left to right" in app.record.decisions.value and "possible match" in card.verdict.value


def test_a_box_drawn_by_hand_becomes_a_manual_probe(loaded_app):
    app, ws = loaded_app, loaded_app.ws
    footage = app.tracks.footage
    walker = next(t for t in footage.tracks if t.track_id == 1)
    face = walker.faces[len(walker.faces) // 2]
    assert len(app.manual.frames) == footage.frames_sampled  # every analysed frame can be drawn on

    app.manual.frame_slider.value = app.manual.frames.index((face.frame_index, face.timestamp_s))
    finish(app)
    assert f"frame {face.frame_index}" in app.manual.frame_label.value
    if app.manual.drawer is not None:
        assert app.manual.drawer.image.startswith("data:image/jpeg;base64,")
        # A box drawn on the picture (here the same size as the frame) fills in the typed box.
        x1, y1, x2, y2 = face.face.bbox_xyxy
        app.manual.drawer.bboxes = [{"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1, "label": "face"}]
        assert (app.manual.x1.value, app.manual.y2.value) == (round(x1), round(y2))

    app.manual.x1.value, app.manual.x2.value = 50, 40  # not a box: said plainly, nothing added
    app.manual.add_button.click()
    assert app.status.kind == "error" and "empty" in app.status.message and app.manual.probes == []

    x1, y1, x2, y2 = (round(v) for v in face.face.bbox_xyxy)
    app.manual.x1.value, app.manual.y1.value, app.manual.x2.value, app.manual.y2.value = x1 - 4, y1 - 4, x2 + 4, y2 + 4
    app.manual.add_button.click()
    finish(app)
    assert app.status.kind == "success", app.status.message
    [probe] = app.manual.probes
    assert probe.manual and probe.frame_index == face.frame_index and "manual" in probe.probe_id

    for card in app.tracks.cards.values():
        card.select.value = False
    app.search_panel.search_button.click()
    finish(app)
    assert app.status.kind == "success", app.status.message
    recorded = ws.search_run(app.search_panel.run.search_id)
    assert [p.manual for p in recorded.probes] == [True]
    assert recorded.candidates[0].subject_id == WALKER
    probe_card = next(w for w in walk(app.search_panel.results) if "wb-probe-card" in getattr(w, "_dom_classes", ()))
    assert "drawn by hand" in "".join(w.value for w in walk(probe_card) if isinstance(w, widgets.HTML))


def test_an_uploaded_clip_is_kept_under_its_hash_with_a_safe_name(demo_home, engine, tmp_path):
    app = new_app(copy_of(demo_home, tmp_path / "ws"), engine)
    try:
        open_demo_case(app)
        data = (demo_home / "demo" / "probes" / CLIP_NAME).read_bytes()
        upload(app, "../../evidence/cam 2.mp4", data)
        assert app.status.kind == "success", app.status.message
        kept = Path(app.footage_panel.choice.value)
        # The folder is the content's sha256: the given name only labels the file, made safe.
        assert kept.parent.parent == app.ws.settings.uploads_dir and len(kept.parent.name) == 64
        assert kept.name == "cam_2.mp4" and kept.read_bytes() == data
        assert app.footage_panel.choice.label == "cam 2.mp4 (uploaded)"
        assert app.footage_panel.upload.value == ()

        app.footage_panel.fps.value = 2.5  # fewer frames: the grid is what is tested here
        app.footage_panel.extract_button.click()
        finish(app)
        assert app.status.kind == "success", app.status.message
        assert len(app.tracks.cards) == 2 and "cam 2.mp4 (uploaded)" in app.footage_panel.summary.value
    finally:
        app.close()


def test_a_bad_upload_is_named_plainly_and_the_page_keeps_working(demo_home, engine, tmp_path):
    app = new_app(copy_of(demo_home, tmp_path / "ws"), engine)
    try:
        open_demo_case(app)
        upload(app, "notes.txt", b"not footage")
        assert app.status.kind == "error" and "notes.txt" in app.status.message and "not an image or video" in app.status.message

        upload(app, "holiday.mp4", b"this is a text file, not a video\n" * 20)
        app.footage_panel.extract_button.click()
        finish(app)
        assert app.status.kind == "error", app.status.message
        assert "holiday.mp4 (uploaded)" in app.status.message and "not a video" in app.status.message
        assert str(app.ws.settings.uploads_dir) not in app.status.message  # the stored name means nothing to the analyst
        assert "Traceback" not in app.status.message
        assert not app.footage_panel.extract_button.disabled and not app.footage_panel.upload.disabled

        # The next action works: a still is footage too (one frame, one face).
        put_in_exhibits(app, demo_home / "demo" / "probes" / "cctv_still.jpg", "cctv_still.jpg")
        app.footage_panel.extract_button.click()
        finish(app)
        assert app.status.kind == "success", app.status.message
        assert list(app.tracks.cards) == [1] and app.manual.frames == [(0, 0.0)]
        assert app.manual.frame_slider.layout.display == "none"  # a still has no frames to choose from

        # A box on the still: a manual probe of the still itself (no frame, no time).
        x1, y1, x2, y2 = (round(v) for v in app.tracks.footage.tracks[0].best.face.bbox_xyxy)
        app.manual.x1.value, app.manual.y1.value, app.manual.x2.value, app.manual.y2.value = x1, y1, x2, y2
        app.manual.add_button.click()
        finish(app)
        assert app.status.kind == "success", app.status.message
        [probe] = app.manual.probes
        assert probe.manual and probe.frame_index is None and probe.source.endswith("cctv_still.jpg")
    finally:
        app.close()


def test_an_upload_over_the_limit_is_refused_plainly(demo_home, engine, tmp_path):
    app = new_app(copy_of(demo_home, tmp_path / "ws"), engine, upload_max_bytes=100_000)
    try:
        open_demo_case(app)
        assert ".mp4" in app.footage_panel.upload.accept and ".jpg" in app.footage_panel.upload.accept
        upload(app, "long.mp4", (demo_home / "demo" / "probes" / CLIP_NAME).read_bytes())
        assert app.status.kind == "error" and "long.mp4" in app.status.message and "upload limit" in app.status.message
        assert app.footage_panel.choice.options == () and not any(app.ws.settings.uploads_dir.glob("*"))
    finally:
        app.close()


def test_cancelling_extraction_keeps_the_faces_found(demo_home, engine, tmp_path):
    app = new_app(copy_of(demo_home, tmp_path / "ws"), engine)
    try:
        open_demo_case(app)
        put_in_exhibits(app, demo_home / "demo" / "probes" / CLIP_NAME, CLIP_NAME)
        app.footage_panel.fps.value = 10.0  # every frame: 40 to analyse, long enough to cancel
        app.footage_panel.extract_button.click()
        assert app.footage_panel.extract_button.disabled, "no second extraction while one runs"
        deadline = time.monotonic() + WAIT_S
        while app.runner.progress.value == 0.0 and app.runner.busy and time.monotonic() < deadline:
            time.sleep(0.02)
        app.runner.cancel_button.click()
        finish(app)
        footage = app.footage_panel.loaded.footage
        assert app.status.kind == "warning" and "cancelled" in app.status.message, app.status.message
        assert 0 < footage.frames_sampled < 40 and len(footage.tracks) >= 1 and len(app.tracks.cards) == len(footage.tracks)
        assert not app.footage_panel.extract_button.disabled
    finally:
        app.close()


def test_the_notebook_runs_top_to_bottom(demo_home, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    home = copy_of(demo_home, tmp_path / "ws")
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("WORKBENCH_USER", "analyst1")
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "analyst.ipynb", as_version=4)
    assert all(cell.get("outputs", []) == [] for cell in notebook.cells), "commit the notebook with its outputs cleared"
    assert notebook.metadata.kernelspec.name == "python3"
    notebook.cells.append(
        nbformat.v4.new_code_cell('print("STATUS", app.status.kind, "|", app.status.message, "|", app.case_panel.existing.options)')
    )
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "STATUS info | Open a case to start" in printed and DEMO_CASE in printed


def test_the_style_sheet_is_all_inside_its_style_element():
    """Rules outside <style> show on the page as text (a rule once did, above the dashboard)."""
    from workbench.ui.layout import style_sheet

    text = style_sheet().value.strip()
    assert text.startswith("<style>") and text.endswith("</style>") and text.count("<style>") == 1
