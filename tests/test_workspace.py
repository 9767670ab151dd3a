"""The Workspace as a notebook uses it: the whole investigation as plain function calls.

open the workspace -> new case -> extract a video -> pick a track -> search -> first verdict ->
second verdict by another user -> report PDF; and the same with a manual box on a still. Real
models, a real gallery, real footage (a clip made from package faces; the Hamilton clip of
../shared/data when present), a PDF read back.
"""

from __future__ import annotations

import shutil
import threading

import pytest
from pypdf import PdfReader

from workbench import Workspace
from workbench.config import Settings
from workbench.demo import DEMO_CASE, build_demo_workspace
from workbench.errors import CaseError, ReviewError, WorkbenchError
from workbench.types import ReviewStatus, SearchMode, Stage


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, session_home, engine):
    home = tmp_path_factory.mktemp("ws-demo")
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings(home=home, user="builder"), engine=engine) as ws:
        built = build_demo_workspace(ws)
    return home, built


@pytest.fixture
def home(demo_home, tmp_path):
    """A fresh copy of the demo workspace for one test."""
    src, built = demo_home
    copy = tmp_path / "ws"
    shutil.copytree(src, copy, symlinks=True)
    return copy, {k: str(v).replace(str(src), str(copy)) for k, v in built.items() if isinstance(v, str)}


def test_notebook_sequence_with_a_track_of_a_video(home, engine):
    home, built = home
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        case = ws.open_case("OP-7", offence="robbery", purpose="identify the man walking past the shop camera", officer="DC Shah")
        assert case.created_by == "analyst1"
        seen = []
        footage = ws.extract(built["clip"], progress=lambda done, total: seen.append((done, total)))
        tracks = ws.tracks_frame(footage)
        assert len(tracks) == 2 and set(tracks.columns) >= {"track_id", "start_s", "end_s", "quality"}
        assert seen and seen[-1][0] == pytest.approx(seen[-1][1]) and all(d <= t + 1e-9 for d, t in seen)
        walker = ws.probe_from_track(footage, int(tracks.sort_values("quality").iloc[-1]["track_id"]))
        assert walker.source_sha256 == footage.info.sha256 and walker.crop_png and walker.n_faces > 1
        run = ws.search("OP-7", walker, top=5)
        frame = run.to_frame()
        assert list(frame["rank"]) == [1, 2, 3, 4, 5] and frame.iloc[0]["subject_id"] == built["expected"]
        assert run.candidates[0].above_threshold and run.candidates[0].probe_id == walker.probe_id
        first = ws.first_verdict(run.search_id, built["expected"], "possible match", "same hairline and jaw", probe_id=walker.probe_id)
        assert first.stage is Stage.FIRST
        with pytest.raises(ReviewError, match="different person"):
            ws.second_verdict(run.search_id, built["expected"], "confirm", "agree")
    with Workspace.open(home, user="reviewer2", engine=engine) as ws:
        waiting = ws.awaiting_second_review()
        assert [(w.search_id, w.subject_id) for w in waiting] == [(run.search_id, built["expected"])]
        ws.second_verdict(run.search_id, built["expected"], "confirm", "agree: ear shape and hairline")
        assert ws.awaiting_second_review() == []
        assert ws.review_status(run.search_id)[0].status is ReviewStatus.AGREED
        result = ws.export_report("OP-7", home / "reports" / "OP-7.pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(result["out"]).pages)
    assert "OP-7" in text and built["expected"] in text and "reviewer2" in text and result["audit_ok"]


def test_notebook_sequence_with_a_manual_box_on_a_still(home, engine, t1_path, t1_faces):
    home, built = home
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        ws.open_case("OP-8", offence="theft", purpose="identify the person in the doorbell photo")
        # Person 4 of t1 is DEMO-T1-4; the analyst draws a square box round their face.
        x1, y1, x2, y2 = t1_faces[3].bbox_xyxy
        side = max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        probe = ws.probe_from_box(t1_path, (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        assert probe.manual and probe.crop_png and probe.frame_index is None
        run = ws.search("OP-8", probe, top=3)
        assert run.probes[0].manual and run.candidates[0].subject_id == built["expected"]
        ws.first_verdict(run.search_id, built["expected"], "possible match", "same face", probe_id=probe.probe_id)
    with Workspace.open(home, user="reviewer2", engine=engine) as ws:
        ws.second_verdict(run.search_id, built["expected"], "disagree", "the ears differ")
        assert ws.review_status(run.search_id)[0].status is ReviewStatus.DISPUTED
        replayed = ws.replay(run.search_id)
        assert replayed.same and replayed.replayed.probes[0].manual
        out = ws.export_report("OP-8", home / "reports" / "OP-8.html")["out"]
    assert "manual" in open(out, encoding="utf-8").read().lower()


def test_a_track_of_a_still_folder_and_a_frame_box(home, engine, t1_path, tmp_path):
    home, built = home
    stills = tmp_path / "stills"
    stills.mkdir()
    shutil.copy(t1_path, stills / "img1.jpg")
    shutil.copy(built["probe"], stills / "img2.jpg")
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        footage = ws.extract(stills)
        assert footage.frames_sampled == 2 and len(footage.tracks) >= 6
        face = footage.tracks[0].best
        probe = ws.probe_from_box(footage, face.face.bbox_xyxy, frame_index=face.frame_index, timestamp_s=face.timestamp_s)
        assert probe.manual and probe.frame_index == face.frame_index and probe.source_sha256 == footage.info.sha256
        with pytest.raises(WorkbenchError, match="which frame"):
            ws.probe_from_box(footage, face.face.bbox_xyxy)


def test_cancelled_extraction_keeps_what_it_found(home, engine):
    home, built = home
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        cancel = threading.Event()

        def progress(done, total):
            if done >= 1.0:  # a second of footage analysed: the analyst clicks Cancel
                cancel.set()

        footage = ws.extract(built["clip"], fps=10, progress=progress, cancel=cancel)
        full = ws.extract(built["clip"], fps=10)
    assert 0 < footage.frames_sampled < full.frames_sampled
    assert footage.tracks and any("cancelled at" in w for w in footage.warnings)


def test_searches_are_refused_outside_an_open_case_before_any_file_is_read(home, engine, tmp_path):
    home, built = home
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        with pytest.raises(CaseError, match="no case 'NOPE'"):
            ws.search_files("NOPE", [tmp_path / "missing.jpg"])
        ws.set_case_status(DEMO_CASE, "closed", reason="done")
        with pytest.raises(CaseError, match="closed"):
            ws.open_case(DEMO_CASE)
        with pytest.raises(CaseError, match="same name"):
            ws.open_case("OP-9", offence="x", purpose="y")
            ws.search_files("OP-9", [built["probe"], built["probe"]])
        assert ws.searches("OP-9") == []


def test_identification_mode_and_the_choice_errors(home, engine):
    home, built = home
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        run = ws.search_files(DEMO_CASE, [built["probe"]], mode="Identification", threshold=0.5)
        assert run.mode is SearchMode.IDENTIFICATION and [c.subject_id for c in run.candidates] == [built["expected"]]
        with pytest.raises(WorkbenchError, match="search mode must be one of"):
            ws.search_files(DEMO_CASE, [built["probe"]], mode="guess")
        with pytest.raises(WorkbenchError, match="verdict must be one of"):
            ws.first_verdict(run.search_id, built["expected"], "probably", "x")


def test_the_workspace_closes_and_refuses_a_file_as_home(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(WorkbenchError, match="is a file"):
        Workspace.open(target, user="a")
    with Workspace.open(tmp_path / "ws", user="a") as ws:
        assert ws.list_cases() == []
    assert ws._cases is None and ws._gallery is None


@pytest.mark.shared_data
@pytest.mark.slow
def test_notebook_sequence_on_real_footage(shared_data, session_home, engine, tmp_path):
    """The Hamilton clip against the fr_examples gallery: a track of Obama finds obama first."""
    home = tmp_path / "ws"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        summary = ws.enrol(shared_data / "faces" / "fr_examples" / "train")
        assert summary.counts["enrolled"] == 9
        ws.open_case("HAM-1", offence="test", purpose="find the person in the clip")
        footage = ws.extract(shared_data / "video" / "short_hamilton_clip.mp4")
        runs = {t.track_id: ws.search("HAM-1", ws.probe_from_track(footage, t.track_id), top=3) for t in footage.tracks}
        obama = [tid for tid, run in runs.items() if run.candidates[0].subject_id == "obama"]
        assert obama, {tid: run.candidates[0].subject_id for tid, run in runs.items()}
        run = runs[obama[0]]
        ws.first_verdict(run.search_id, "obama", "possible match", "same face")
    with Workspace.open(home, user="reviewer2", engine=engine) as ws:
        ws.second_verdict(run.search_id, "obama", "confirm", "agree")
        out = ws.export_report("HAM-1", home / "reports" / "HAM-1.pdf")["out"]
    assert "obama" in "\n".join(p.extract_text() for p in PdfReader(out).pages)


def test_retention_archives_closed_cases_and_purges_old_biometric_data(home, engine):
    """After the period, an archived case keeps its record (settings, evidence, lists, decisions,
    report hashes) but no probe crop or embedding; the purge is audited and the audit verifies."""
    from datetime import UTC, datetime, timedelta

    from workbench import audit as audit_log

    home, built = home
    with Workspace.open(home, user="analyst1", engine=engine) as ws:
        run = ws.search_files(DEMO_CASE, [built["probe"]], top=3)
        ws.export_report(DEMO_CASE, home / "reports" / "before.pdf")
        ws.set_case_status(DEMO_CASE, "closed", reason="charged")
        assert ws.apply_retention() == {"retention_days": None, "archived": [], "purged": []}
    with Workspace.open(home, user="admin", engine=engine, retention_days=30) as ws:
        first = ws.apply_retention()
        assert first["archived"] == [DEMO_CASE] and first["purged"] == []  # archived now: the period starts
        later = ws.apply_retention(now=datetime.now(UTC) + timedelta(days=31))
        (purge,) = later["purged"]
        assert purge["case"] == DEMO_CASE and purge["probes_purged"] >= 1 and purge["reports_kept"] == 1
        kept = ws.search_run(run.search_id)
        assert kept.probes[0].purged and kept.probes[0].crop_png is None and kept.probes[0].faces == ()
        assert kept.probes[0].source_sha256 and [c.subject_id for c in kept.candidates] == [c.subject_id for c in run.candidates]
        assert ws.apply_retention(now=datetime.now(UTC) + timedelta(days=62))["purged"] == []  # once
        assert ws.verify_audit().ok
        entry = [e for e in audit_log.entries(ws.cases.conn) if e.action == "retention.purge"][-1]
        assert entry.details["reports_kept"][0]["sha256"]
        out = ws.export_report(DEMO_CASE, home / "reports" / "after.html")["out"]
    assert "purged under the retention rule" in open(out, encoding="utf-8").read()
    with Workspace.open(home, user="nobody-else", engine=engine, retention_days=30) as ws:
        ws.set_user("clerk", ["analyst"])  # roles now apply as assigned
    with Workspace.open(home, user="clerk", engine=engine, retention_days=30) as ws:
        with pytest.raises(WorkbenchError, match="clerk may not apply the retention rule"):
            ws.apply_retention()
