"""The real ``workbench gallery ...`` and ``workbench search`` commands, and crash safety.

In-process runs go through :func:`workbench.cli.main`; the crash tests run ``python -m workbench``
in a subprocess and kill it with SIGKILL at seeded random moments, then check that the
workspace opens, nothing is half-written, and re-running finishes the job.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench import audit
from workbench.cli import main
from workbench.config import Settings
from workbench.fileio import sha256_file
from workbench.gallery.index import read_manifest
from workbench.gallery.store import Gallery
from workbench.images import load_image

from test_gallery_support import (  # noqa: F401  (fixtures)
    SAMPLE_SUBJECTS,
    add_synthetic,
    copy_home,
    degrade,
    new_home,
    sample_folder,
    sample_home,
    save_image,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_json(capsys, *argv) -> tuple[int, dict]:
    """Run the CLI in-process with --json; (exit status, the one JSON document printed)."""
    status = main([*argv, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out)  # json.loads fails if anything but one document was printed


CASE = "CASE-1"


@pytest.fixture
def home(tmp_path, sample_home, capsys) -> Path:
    """A copy of the sample workspace with an open case (searches run inside a case)."""
    home = copy_home(sample_home, tmp_path / "ws")
    assert main(["--home", str(home), "case", "new", CASE, "--offence", "burglary", "--purpose", "gallery tests"]) == 0
    capsys.readouterr()
    return home


def test_enrol_prints_one_summary_document(tmp_path, session_home, sample_folder, capsys):
    home = new_home(tmp_path / "ws", session_home)
    status, data = run_json(capsys, "--home", str(home), "--user", "analyst-1", "gallery", "enrol", str(sample_folder))
    assert status == 0
    assert {k: data[k] for k in ("enrolled", "skipped", "no_face", "unreadable", "invalid")} == {
        "enrolled": 8,
        "skipped": 0,
        "no_face": 0,
        "unreadable": 0,
        "invalid": 0,
    }
    assert data["not_indexed"] == 8 and data["report"] is None and data["images_per_s"] > 0
    with Gallery.open(Settings(home=home)) as gallery:
        assert {e.user for e in audit.entries(gallery.conn)} == {"analyst-1"}


def test_enrol_from_a_manifest_with_a_report_path(tmp_path, session_home, tom_hanks_path, capsys):
    home = new_home(tmp_path / "ws", session_home)
    (tmp_path / "hanks.png").write_bytes(tom_hanks_path.read_bytes())
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject_id,image_path,name\nP-1,hanks.png,Tom\nP-2,missing.png,\n")
    report = tmp_path / "out" / "report.csv"
    status, data = run_json(capsys, "--home", str(home), "gallery", "enrol", "--manifest", str(manifest), "--report", str(report))
    assert status == 0 and data["enrolled"] == 1 and data["unreadable"] == 1 and data["report"] == str(report)
    assert "missing.png,unreadable,no such file" in report.read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gallery", "enrol"], "give either a folder"),
        (["gallery", "enrol", "DIR", "--manifest", "m.csv"], "give either a folder"),
        (["gallery", "enrol", "no-such-folder"], "no such folder"),
        (["gallery", "remove", "NOBODY"], "'NOBODY' is not in the gallery"),
        (["search", "no-such.jpg", "--case", CASE], "no such file"),
        (["search", "no-such.mp4", "--case", CASE], "no-such.mp4"),
    ],
)
def test_errors_exit_1_with_one_json_error(argv, message, home, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    status, data = run_json(capsys, "--home", str(home), *argv)
    assert status == 1 and message in data["error"]


def test_search_json_follows_the_design(home, t1_path, capsys):
    status, data = run_json(capsys, "--home", str(home), "search", str(t1_path), "--top", "3", "--case", CASE)
    assert status == 0
    assert [len(p["candidates"]) for p in data["probes"]] == [3] * 6
    qualities = [p["quality"] for p in data["probes"]]
    assert qualities == sorted(qualities, reverse=True)
    assert data["candidates"] == data["probes"][0]["candidates"]
    probe = data["probes"][0]
    assert {"probe_id", "source", "start_s", "end_s", "quality", "candidates"} <= set(probe)
    assert probe["source"] == str(t1_path) and probe["start_s"] is None
    first = data["candidates"][0]
    assert list(first)[:5] == ["rank", "subject_id", "score", "image_id", "above_threshold"]
    assert first["rank"] == 1 and first["subject_id"].startswith("T1-") and first["above_threshold"] is True
    assert data["method"] == "exact" and data["mode"] == "investigation" and data["top"] == 3


def test_search_identification_mode_and_fusion(home, tom_hanks_path, tmp_path, capsys):
    small = save_image(tmp_path / "small.jpg", degrade(load_image(tom_hanks_path), scale=0.5), quality=40)
    status, data = run_json(
        capsys, "--home", str(home), "search", str(small), "--mode", "identification", "--threshold", "0.5", "--case", CASE
    )
    assert status == 0 and [c["subject_id"] for c in data["candidates"]] == ["HANKS"]
    status, data = run_json(capsys, "--home", str(home), "search", str(small), str(tom_hanks_path), "--fuse", "--top", "2", "--case", CASE)
    assert len(data["probes"]) == 1 and data["probes"][0]["faces"] == 2
    assert data["candidates"][0]["subject_id"] == "HANKS"  # per-probe scores: see test_search.py


def test_stats_rebuild_remove_round_trip(home, tom_hanks_path, capsys):
    status, stats = run_json(capsys, "--home", str(home), "gallery", "stats")
    assert status == 0 and stats["index"] is None and stats["not_indexed"] == 8 and stats["pack_id"].startswith("opencv-zoo@")
    status, built = run_json(capsys, "--home", str(home), "gallery", "rebuild", "--n-trees", "8")
    assert status == 0 and built["count"] == 8 and built["n_trees"] == 8
    status, stats = run_json(capsys, "--home", str(home), "gallery", "stats", "--verify")
    assert stats["index"]["build_id"] == built["build_id"] and stats["not_indexed"] == 0 and stats["index_verify_problems"] == []
    status, removed = run_json(capsys, "--home", str(home), "--user", "admin-2", "gallery", "remove", "HANKS")
    assert status == 0 and removed["faces"] == 1 and "rebuild" in removed["note"]
    status, stats = run_json(capsys, "--home", str(home), "gallery", "stats")
    assert stats["subjects"] == 7 and stats["removed_since_build"] == 1
    status, data = run_json(capsys, "--home", str(home), "search", str(tom_hanks_path), "--exact", "--case", CASE)
    assert "HANKS" not in [c["subject_id"] for c in data["candidates"]]


def test_human_output_is_plain_text(home, tom_hanks_path, capsys):
    assert main(["--home", str(home), "search", str(tom_hanks_path), "--top", "2", "--case", CASE]) == 0
    out = capsys.readouterr().out
    assert "1. HANKS" in out and "not identifications" in out
    assert main(["--home", str(home), "gallery", "stats"]) == 0
    assert "subjects 8, images 8, faces 8" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Crash safety: SIGKILL at random moments


def _failure(home: Path, stderr: bytes) -> str:
    """A failed run's stderr and the tracebacks the CLI logged in the workspace (its stderr
    gives one line; the log says which statement failed)."""
    log = Path(home) / "logs" / "workbench.log"
    logged = log.read_text(errors="replace")[-6000:] if log.is_file() else "(no workbench.log)"
    return f"{stderr.decode(errors='replace')}\n--- {log} ---\n{logged}"


def _workbench(home: Path, *argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "--home", str(home), "--user", "crash-test", *argv, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=PROJECT_ROOT,
    )


def _kill_after(process: subprocess.Popen, seconds: float, how: signal.Signals = signal.SIGKILL) -> bool:
    """Send ``how`` (SIGKILL, or SIGINT as Ctrl-C does) after ``seconds`` unless it ended; True if sent."""
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(how)
        _, err = process.communicate(timeout=60)
        if how == signal.SIGINT:
            assert process.returncode in (0, 130, -signal.SIGINT), err.decode()  # done, or stopped by Ctrl-C
        return True


def _assert_store_whole(home: Path) -> int:
    """The database opens, passes integrity checks, and holds no half-written enrolment."""
    conn = sqlite3.connect(home / "workbench.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    with Gallery.open(Settings(home=home)) as gallery:
        one = lambda sql: gallery.conn.execute(sql).fetchone()[0]
        assert one("SELECT COUNT(*) FROM custody_images WHERE image_id NOT IN (SELECT image_id FROM faces)") == 0
        assert one("SELECT COUNT(*) FROM subjects WHERE subject_id NOT IN (SELECT subject_id FROM custody_images)") == 0
        assert audit.verify(gallery.conn).ok
        # every stored image came with the audit entry of its batch, in the same transaction
        logged = sum(e.details["images"] for e in audit.entries(gallery.conn) if e.action == "gallery.enrol")
        images = gallery.counts()["images"]
        assert logged == images
        return images


@pytest.fixture(scope="module")
def crash_folder(tmp_path_factory, sample_folder) -> Path:
    """CRASH_IMAGES distinct images: rescaled, recompressed copies of each sample subject's image
    (enough that enrolment takes several seconds: kills must land mid-run)."""
    root = tmp_path_factory.mktemp("crash") / "custody"
    for subject in SAMPLE_SUBJECTS:
        rgb = load_image(next((sample_folder / subject).iterdir()))
        for i, scale in enumerate(CRASH_SCALES):
            save_image(root / subject / f"{i}.jpg", degrade(rgb, scale=scale), quality=92 - i)
    return root


CRASH_SCALES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45)
CRASH_IMAGES = len(SAMPLE_SUBJECTS) * len(CRASH_SCALES)


@pytest.mark.slow
def test_enrolment_killed_at_random_moments_resumes(crash_folder, tmp_path, session_home):
    """Kill points are seeded: one during start-up, then three while batches are being stored
    (after a random number of stored images, plus a random fraction of a batch's time)."""
    home = new_home(tmp_path / "ws", session_home)
    rng = random.Random(20240603)
    assert _kill_after(_workbench(home, "gallery", "enrol", str(crash_folder), "--batch", "4"), rng.uniform(0.1, 0.5))
    stored, killed = 0, 0
    for how in (signal.SIGKILL, signal.SIGINT, signal.SIGKILL):
        if stored >= CRASH_IMAGES - 1:
            break  # a run finished the folder: nothing left to kill mid-run
        stored = min(CRASH_IMAGES - 1, stored + rng.randint(1, 10))
        if _kill_when_stored(
            _workbench(home, "gallery", "enrol", str(crash_folder), "--batch", "4"), home, stored, rng.uniform(0, 0.3), how
        ):
            killed += 1
        stored = _assert_store_whole(home)
    process = _workbench(home, "gallery", "enrol", str(crash_folder), "--batch", "4")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, _failure(home, err)
    summary = json.loads(out)
    assert summary["enrolled"] + summary["skipped"] == CRASH_IMAGES and summary["unreadable"] == summary["no_face"] == 0
    assert _assert_store_whole(home) == CRASH_IMAGES
    assert killed >= 2  # the kills landed mid-run (else the test proved nothing)


def _kill_when_stored(process: subprocess.Popen, home: Path, images: int, extra_s: float, how: signal.Signals) -> bool:
    """Send ``how`` once the store holds ``images`` images (then ``extra_s`` later); True if sent."""
    db = home / "workbench.db"
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if db.exists():
            conn = sqlite3.connect(db, timeout=5)
            try:
                count = conn.execute("SELECT COUNT(*) FROM custody_images").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0  # tables not created yet
            finally:
                conn.close()
            if count >= images:
                return _kill_after(process, extra_s, how)
        time.sleep(0.02)
    process.communicate(timeout=60)
    return False


@pytest.fixture(scope="module")
def big_home(tmp_path_factory, session_home, engine) -> Path:
    """40,000 SYNTHETIC faces: a rebuild takes a couple of seconds, long enough to be killed."""
    home = new_home(tmp_path_factory.mktemp("big") / "ws", session_home)
    add_synthetic(home, engine.pack_id, identities=40_000, seed=5)
    return home


def _assert_index_whole(home: Path) -> dict | None:
    manifest = read_manifest(home / "index")
    if manifest is not None:
        folder = home / "index" / manifest["folder"]
        for name, info in manifest["files"].items():
            assert sha256_file(folder / name) == info["sha256"], name
    with Gallery.open(Settings(home=home, exact_search_below=0)) as gallery:
        probe = np.frombuffer(gallery.conn.execute("SELECT embedding FROM faces WHERE face_id = 17").fetchone()[0], "<f4")
        live = gallery.live()
        ids, _ = live.nearest_faces(probe[None], 1, use_index=live.build is not None, search_k=-1)
        assert ids[0, 0] == 17
    return manifest


@pytest.mark.slow
def test_rebuild_killed_at_random_moments_keeps_the_previous_index(big_home, tmp_path):
    """A first rebuild runs to the end and times a whole run; five more are killed at seeded
    random fractions of that time (start-up, reading the store, building, checksumming, swap)."""
    home = copy_home(big_home, tmp_path / "ws")
    rng = random.Random(77)
    started = time.monotonic()
    process = _workbench(home, "gallery", "rebuild")
    assert process.wait(timeout=120) == 0
    whole_run = time.monotonic() - started
    previous = _assert_index_whole(home)
    outcomes = []
    for _attempt in range(5):
        process = _workbench(home, "gallery", "rebuild")
        started = time.monotonic()
        killed = _kill_after(process, rng.uniform(0.1, 1.0) * whole_run)
        # Killed or not, the index in use is complete: the previous build, or the new one if
        # the kill came after the swap.
        manifest = _assert_index_whole(home)
        if killed and manifest is not None and previous is not None and manifest["build_id"] != previous["build_id"]:
            assert manifest["built_utc"] >= previous["built_utc"]
        previous = manifest
        outcomes.append((killed, round(time.monotonic() - started, 2)))
    process = _workbench(home, "gallery", "rebuild")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, _failure(home, err)
    final = _assert_index_whole(home)
    assert final["build_id"] == json.loads(out)["build_id"] and final["count"] == 40_000
    leftovers = [p.name for p in (home / "index").iterdir() if p.is_dir() and p.name != final["folder"]]
    assert leftovers == []
    assert sum(killed for killed, _ in outcomes) >= 3, outcomes


@pytest.mark.slow
def test_two_enrolments_at_once_store_each_image_once(crash_folder, tmp_path, session_home):
    home = new_home(tmp_path / "ws", session_home)
    runs = [_workbench(home, "gallery", "enrol", str(crash_folder), "--batch", "4") for _ in range(2)]
    summaries = []
    for process in runs:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, _failure(home, err)
        summaries.append(json.loads(out))
    assert sum(s["enrolled"] for s in summaries) == CRASH_IMAGES
    assert all(s["enrolled"] + s["skipped"] == CRASH_IMAGES for s in summaries)
    assert _assert_store_whole(home) == CRASH_IMAGES
