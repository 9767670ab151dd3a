"""Crash safety: the CLI killed with SIGKILL at seeded random moments of removal, search (with its
audit entry), report export and footage extraction with saved crops; and four processes enrolling,
searching, reviewing and rebuilding at once.

After every kill the workspace opens, ``audit verify`` passes and nothing is half applied:

* a recorded search has its probes, its candidate list and its audit entry, or none of them;
* a removed subject is gone with all its images and faces, or is whole;
* an exported report named in the audit log exists with the recorded sha256 (a file without an
  entry is an export that did not finish: it can be done again);
* a saved best-shot crop is a whole JPEG.

Runs per operation: ``WORKBENCH_KILL_RUNS`` (default 3 here; ``bench/kill_runs.py`` runs 20 and
prints the tally the README quotes).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from workbench import Workspace
from workbench.config import Settings
from workbench.demo import DEMO_CASE, build_demo_workspace

pytestmark = pytest.mark.slow

RUNS = int(os.environ.get("WORKBENCH_KILL_RUNS", "3"))


def command(home: Path, user: str, *args) -> list[str]:
    return [sys.executable, "-m", "workbench", "--home", str(home), "--user", user, *map(str, args)]


def run_and_kill(argv: list[str], after_s: float) -> bool:
    """Start ``argv``; SIGKILL it after ``after_s`` unless it ended. True if the kill landed."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(after_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return time.monotonic() - started


def verify(home: Path) -> None:
    proc = subprocess.run(command(home, "auditor", "audit", "verify", "--json"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def consistent(home: Path) -> None:
    """The invariants of the module docstring, read straight from SQLite and the files."""
    conn = sqlite3.connect(home / "workbench.db")
    conn.row_factory = sqlite3.Row
    audited = {}
    for row in conn.execute("SELECT action, details FROM audit_log"):
        audited.setdefault(row["action"], []).append(json.loads(row["details"]))
    searches = {r[0] for r in conn.execute("SELECT search_id FROM searches")}
    with_probes = {r[0] for r in conn.execute("SELECT DISTINCT search_id FROM search_probes")}
    with_lists = {r[0] for r in conn.execute("SELECT DISTINCT search_id FROM search_candidates")}
    logged = {d["search_id"] for d in audited.get("search.run", []) + audited.get("search.replay", [])}
    assert searches == with_probes == logged and with_lists <= searches
    for subject in conn.execute("SELECT subject_id FROM subjects"):
        images = conn.execute("SELECT COUNT(*) FROM custody_images WHERE subject_id = ?", (subject[0],)).fetchone()[0]
        assert images > 0, f"subject {subject[0]} lost its images but not itself"
    orphans = conn.execute("SELECT COUNT(*) FROM faces WHERE image_id NOT IN (SELECT image_id FROM custody_images)").fetchone()[0]
    assert orphans == 0
    for export in audited.get("report.export", []):
        path = Path(export["out"])
        assert path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == export["sha256"], export
    conn.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory, session_home, engine):
    """The demo workspace with one search and a first verdict (for reports to show)."""
    home = tmp_path_factory.mktemp("kills") / "ws"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings(home=home, user="analyst1"), engine=engine) as ws:
        built = build_demo_workspace(ws)
        run = ws.search_files(DEMO_CASE, [built["probe"]], top=3)
        ws.first_verdict(run.search_id, built["expected"], "possible match", "same face")
    return home, built


@pytest.fixture
def home(base, tmp_path):
    src, built = base
    copy = tmp_path / "ws"
    shutil.copytree(src, copy, symlinks=True)
    return copy, {k: str(v).replace(str(src), str(copy)) for k, v in built.items() if isinstance(v, str)}


def kill_runs(home: Path, argv_for, *, seed: int) -> int:
    """Kill ``argv_for(i)`` at a seeded random moment of its measured duration, RUNS times;
    check the workspace after each. Returns how many kills landed mid-run."""
    rng = random.Random(seed)
    duration = timed(argv_for(-1))
    consistent(home)
    landed = 0
    for i in range(RUNS):
        landed += run_and_kill(argv_for(i), rng.uniform(0.3, 1.0) * duration)
        verify(home)
        consistent(home)
    return landed


def test_search_killed_mid_run(home):
    home, built = home
    landed = kill_runs(home, lambda i: command(home, "analyst1", "search", built["probe"], "--case", DEMO_CASE, "--json"), seed=1)
    print(f"\nsearch: {landed} of {RUNS} kills landed mid-run")


def test_report_export_killed_mid_run(home, tmp_path):
    home, built = home
    landed = kill_runs(home, lambda i: command(home, "reviewer2", "report", DEMO_CASE, "--out", tmp_path / f"r{i}.pdf"), seed=2)
    for pdf in tmp_path.glob("r*.pdf"):
        assert pdf.read_bytes().startswith(b"%PDF") and b"%%EOF" in pdf.read_bytes()[-1024:], pdf
    print(f"\nreport: {landed} of {RUNS} kills landed mid-run")


def test_removal_killed_mid_run(home):
    home, built = home
    subjects = ["DEMO-HANKS", "DEMO-COLLINS", "DEMO-T1-1", "DEMO-T1-2", "DEMO-T1-3", "DEMO-T1-5", "DEMO-T1-6"]
    subjects = subjects * (RUNS // len(subjects) + 1)
    landed = kill_runs(home, lambda i: command(home, "admin", "gallery", "remove", subjects[i]), seed=3)
    print(f"\nremoval: {landed} of {RUNS} kills landed mid-run")


def test_extraction_with_saved_crops_killed_mid_run(home, tmp_path):
    home, built = home
    crops = tmp_path / "crops"
    landed = kill_runs(home, lambda i: command(home, "analyst1", "footage", "extract", built["clip"], "--save-crops", crops), seed=4)
    for crop in crops.glob("*.jpg"):
        with Image.open(crop) as image:
            image.load()  # a half-written JPEG fails here
    assert not list(crops.glob(".*")), "temporary crop files left behind"
    print(f"\nextraction: {landed} of {RUNS} kills landed mid-run")


def test_four_processes_at_once(home, tmp_path, t1_path):
    """Enrolment, searches, reviews and a rebuild in four processes on one workspace."""
    home, built = home
    extra = tmp_path / "custody"
    (extra / "EXTRA-1").mkdir(parents=True)
    shutil.copy(t1_path, extra / "EXTRA-1" / "t1.jpg")
    with Workspace(Settings(home=home, user="analyst1")) as ws:
        search_id = ws.searches(DEMO_CASE)[-1].search_id
    jobs = [
        command(home, "tech", "gallery", "enrol", extra, "--json"),
        command(home, "analyst1", "search", built["probe"], "--case", DEMO_CASE, "--json"),
        command(home, "reviewer2", "review", "second", search_id, built["expected"], "--confirm", "--reason", "agree"),
        command(home, "tech", "gallery", "rebuild", "--json"),
    ]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in jobs]
    outputs = [p.communicate(timeout=300) for p in processes]  # reads both pipes: no process blocks on a full one
    for process, (_, err), argv in zip(processes, outputs, jobs):
        assert process.returncode == 0 and "Traceback" not in err, (argv, err)
    verify(home)
    consistent(home)
    with Workspace(Settings(home=home, user="auditor")) as ws:
        assert ws.gallery_stats()["subjects"] == 9
        assert ws.review_status(search_id)[0].status.value == "agreed"
