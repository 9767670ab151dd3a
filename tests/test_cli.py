"""The command line as a user runs it: a real subprocess for the contract, main() for the details."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench.cli import main

from conftest import face_crop
from factories import jpeg, save
from test_gallery_support import copy_home, sample_folder, sample_home  # noqa: F401  (fixtures)


def run_cli(*args, home, check=True):
    """Run ``python -m workbench`` in a subprocess; returns the CompletedProcess."""
    env = {**os.environ, "WORKBENCH_USER": "cli-test"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "--home", str(home), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_faces_json_contract(workspace, t1_path):
    proc = run_cli("faces", t1_path, "--json", home=workspace)
    document = json.loads(proc.stdout)  # exactly one JSON document
    (image,) = document["images"]
    assert image["path"] == str(t1_path) and len(image["faces"]) == 6
    face = image["faces"][0]
    assert set(face) >= {"bbox_xyxy", "landmarks", "detector_score", "quality"}
    assert len(face["landmarks"]) == 5 and set(face["quality"]) == {"inter_ocular_px", "sharpness", "yaw_deg", "pitch_deg", "score"}
    assert document["pack_id"].startswith("opencv-zoo@")


def test_faces_reports_each_bad_file_and_continues(workspace, t1_path, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    assert main(["--home", str(workspace), "faces", str(bad), str(t1_path)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: error:" in out and "not an image" in out
    assert f"{t1_path}: 6 face(s)" in out


#: JSON scores carry 4 decimals: a flag is only checked against a score this far from the threshold.
ROUNDING = 1e-4


def assert_flags_follow_scores(candidates, threshold) -> None:
    """Every candidate is flagged exactly when its score reaches the threshold."""
    for c in candidates:
        if abs(c["score"] - threshold) > ROUNDING:
            assert c["above_threshold"] is (c["score"] > threshold), c


def test_compare_flags_by_the_threshold_in_force(workspace, tmp_path, t1_rgb, t1_faces, engine, capsys, monkeypatch):
    """Same person above the pack's threshold, different people below; a threshold setting moves the flag, not the score."""
    a = save(face_crop(t1_rgb, t1_faces[0]), tmp_path / "a.png")
    a_again = save(jpeg(face_crop(t1_rgb, t1_faces[0], margin=0.9), 30), tmp_path / "a2.png")
    b = save(face_crop(t1_rgb, t1_faces[3]), tmp_path / "b.png")

    def compare_both() -> dict:
        out = {}
        for name, (x, y) in {"same": (a, a_again), "different": (a, b)}.items():
            assert main(["--home", str(workspace), "compare", str(x), str(y), "--json"]) == 0
            out[name] = json.loads(capsys.readouterr().out)
        return out

    default = compare_both()
    same, different = default["same"]["score"], default["different"]["score"]
    assert same > different + 0.4
    assert {d["threshold"] for d in default.values()} == {engine.pack.default_threshold}
    assert default["same"]["above_threshold"] is True and default["different"]["above_threshold"] is False
    assert_flags_follow_scores(default.values(), engine.pack.default_threshold)
    # Above both scores nothing is flagged; below both, both are; the scores never move.
    for threshold, flags in ((min(1.0, same + 0.05), (False, False)), (different - 0.05, (True, True))):
        monkeypatch.setenv("WORKBENCH_THRESHOLD", f"{threshold:.4f}")
        moved = compare_both()
        assert (moved["same"]["above_threshold"], moved["different"]["above_threshold"]) == flags
        assert (moved["same"]["score"], moved["different"]["score"]) == (same, different)
        assert moved["same"]["threshold"] == pytest.approx(threshold)


def test_search_threshold_option_decides_which_candidates_are_flagged(tmp_path, sample_home, t1_path, engine, capsys):
    """``search --threshold T`` flags exactly the candidates scoring at least T; without it, the pack's threshold."""
    home = copy_home(sample_home, tmp_path / "ws")
    assert main(["--home", str(home), "case", "new", "CLI-1", "--offence", "burglary", "--purpose", "threshold test"]) == 0
    capsys.readouterr()

    def search(*extra) -> dict:
        assert main(["--home", str(home), "search", str(t1_path), "--case", "CLI-1", "--top", "8", *extra, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    default = search()
    candidates = [c for p in default["probes"] for c in p["candidates"]]
    assert default["threshold"] == engine.pack.default_threshold and len(candidates) == 6 * 8
    assert_flags_follow_scores(candidates, default["threshold"])
    flagged = sum(c["above_threshold"] for c in candidates)
    assert 6 <= flagged < len(candidates)  # each face's own custody crop, few strangers
    # A threshold halfway down the scores: about half flagged, whatever the pack's default says.
    scores = sorted({c["score"] for c in candidates})
    threshold = round((scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2, 4)
    lowered = search("--threshold", str(threshold))
    again = [c for p in lowered["probes"] for c in p["candidates"]]
    assert lowered["threshold"] == threshold
    assert [(c["subject_id"], c["score"]) for c in again] == [(c["subject_id"], c["score"]) for c in candidates]
    assert_flags_follow_scores(again, threshold)
    assert sum(c["above_threshold"] for c in again) != flagged


def test_compare_without_a_face_names_the_file(workspace, tmp_path, t1_path):
    from skimage import data

    empty = save(data.coffee(), tmp_path / "coffee.png")
    proc = run_cli("compare", empty, t1_path, "--json", home=workspace, check=False)
    assert proc.returncode == 1
    assert "no face found" in proc.stderr and str(empty) in proc.stderr
    assert json.loads(proc.stdout)["error"].startswith(str(empty))


def test_models_commands(workspace, tmp_path, capsys):
    assert main(["--home", str(workspace), "models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["active"] == "opencv-zoo" and listed["packs"][0]["name"] == "opencv-zoo"
    assert main(["--home", str(workspace), "models", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert main(["--home", str(workspace), "models", "import", str(empty)]) == 1
    assert "no .onnx files" in capsys.readouterr().err
    assert main(["--home", str(workspace), "--pack", "buffalo_l", "faces", "x.jpg"]) == 1
    assert "workbench models import" in capsys.readouterr().err


@pytest.mark.shared_data
def test_models_import_cli_with_the_shared_pack(scrfd_mfn_folder, tmp_path, capsys):
    folder = scrfd_mfn_folder
    home = tmp_path / "home"
    assert main(["--home", str(home), "models", "import", str(folder), "--std", "128", "--json"]) == 0
    pack = json.loads(capsys.readouterr().out)["pack"]
    assert pack["name"] == "scrfd_mfn" and pack["preprocessing"] == {"channels": "RGB", "mean": 127.5, "std": 128.0}
    assert main(["--home", str(home), "models", "verify", "scrfd_mfn"]) == 0


@pytest.mark.shared_data
def test_compare_fr_examples(workspace, shared_data):
    train = shared_data / "faces" / "fr_examples" / "train"
    same = json.loads(run_cli("compare", train / "obama" / "obama.jpg", train / "obama" / "obama2.jpg", "--json", home=workspace).stdout)
    different = json.loads(run_cli("compare", train / "obama" / "obama.jpg", train / "biden" / "biden.jpg", "--json",
                                   home=workspace).stdout)
    assert same["score"] > 0.6 and same["above_threshold"]
    assert different["score"] < 0.25 and not different["above_threshold"]


def test_demo_builds_a_workspace_and_finds_the_right_person(workspace):
    first = json.loads(run_cli("demo", "--json", "--no-serve", home=workspace).stdout)
    assert first["enrolment"]["enrolled"] == 8
    assert first["search"]["candidates"][0]["subject_id"] == first["expected"]
    assert first["search"]["candidates"][0]["above_threshold"] is True
    again = json.loads(run_cli("demo", "--json", "--no-serve", home=workspace).stdout)
    assert again["enrolment"]["enrolled"] == 0 and again["enrolment"]["skipped"] == 8
    assert again["search"]["search_id"] == first["search"]["search_id"] + 1


def test_usage_errors_exit_2(workspace):
    assert run_cli("faces", home=workspace, check=False).returncode == 2


def test_a_database_kept_busy_prints_one_line_and_logs_the_statement(workspace, capsys, monkeypatch):
    """Another process holding the write lock past the busy timeout: the user reads what to do in
    one line; the workspace log keeps the traceback and the statement that gave up."""
    import sqlite3

    from workbench import db

    assert main(["--home", str(workspace), "case", "new", "BUSY-1", "--offence", "theft", "--purpose", "busy test"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)  # instead of a minute
    holder = sqlite3.connect(workspace / "workbench.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the other writer, holding on
    try:
        code = main(["--home", str(workspace), "case", "new", "BUSY-2", "--offence", "theft", "--purpose", "busy test"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert code == 1
    (error,) = [line for line in err.splitlines() if not line.startswith("warning:")]  # the fixture's folder is 755
    assert "Traceback" not in err
    assert error.startswith(f"error: {workspace / 'workbench.db'}: ") and "busy for too long; try again" in error
    log = (workspace / "logs" / "workbench.log").read_text()
    assert "Traceback" in log and "database is locked" in log
    assert "SQL: BEGIN IMMEDIATE" in log, log[-2000:]  # the statement that gave up
