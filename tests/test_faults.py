"""Faults at every third-party boundary become the workbench's own errors, never a traceback.

One test per boundary: SQLite after the database is open, onnxruntime (a model file truncated
after the pack was made), PyAV (a video whose bytes change between planning and decoding),
numpy (a truncated ``embeddings.npy``), Annoy (an index file replaced by garbage), the file
system (an unwritable reports folder; a file-size limit, ``RLIMIT_FSIZE``, in a child process
during a rebuild and during a report export: a clean error, the previous index and files kept,
``audit verify`` passing afterwards), Dask (Ctrl-C during an extraction prints one line), and
the command line's last line of defence (any other exception: one line and a log file).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench import WorkbenchError
from workbench.cli import main
from workbench.config import Settings
from workbench.errors import FootageError, ModelPackError

from conftest import face_crop, write_custody_folder
from factories import save
from videos import crossing, render, write_video

CASE = "OP-FAULT"


def cli(home: Path, *argv) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(["--home", str(home), *map(str, argv)])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def run_process(home: Path, *argv, limit_bytes: int | None = None, drop_override: bool = False, timeout: float = 300):
    """``python -m workbench`` in a child process, optionally under a file-size limit or, as
    root, without the right to ignore file permissions."""

    def prepare() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
        if drop_override and os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, gone after exec
                libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP

    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER"}
    return subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(home), *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=prepare,
    )


@pytest.fixture(scope="module")
def probe_png(tmp_path_factory, t1_rgb, t1_faces) -> Path:
    return save(face_crop(t1_rgb, t1_faces[2], margin=0.8), tmp_path_factory.mktemp("fault-probe") / "probe.png")


@pytest.fixture(scope="module")
def template(tmp_path_factory, session_home, engine, t1_rgb, t1_faces, tom_hanks_path, astronaut_path, probe_png) -> Path:
    """A workspace with the custody folder enrolled, an index, an open case and one search."""
    from workbench.engine import FaceEngine

    root = tmp_path_factory.mktemp("fault-template")
    custody = write_custody_folder(root / "custody", t1_rgb, t1_faces, tom_hanks_path, astronaut_path)
    home = root / "ws"
    home.mkdir(mode=0o700)
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FaceEngine, "from_settings", classmethod(lambda cls, settings, threads=0: engine))
        for argv in (
            ["gallery", "enrol", custody],
            ["gallery", "rebuild"],
            ["case", "new", CASE, "--offence", "robbery", "--purpose", "fault tests"],
            ["search", probe_png, "--case", CASE],
        ):
            status, _, err = cli(home, *argv)
            assert status == 0, err
    return home


@pytest.fixture
def home(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))


def build_folder(home: Path) -> Path:
    (build,) = (home / "index").glob("build-*")
    return build


def index_state(home: Path) -> dict:
    """The index as files: every name under index/ with its bytes (the lock file aside)."""
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted((home / "index").rglob("*")) if p.is_file() and p.name != ".lock"}


def audit_ok(home: Path) -> None:
    proc = run_process(home, "audit", "verify", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


# -- SQLite ------------------------------------------------------------------------------------


def test_sqlite_errors_after_open_name_the_file(home):
    from workbench.db import WorkspaceDatabaseError, connect
    from workbench.gallery.store import Gallery

    conn = connect(home / "workbench.db")
    with pytest.raises(sqlite3.IntegrityError) as caught:  # callers catching SQLite's classes still can
        conn.execute("UPDATE audit_log SET user = 'someone else'")
    assert isinstance(caught.value, WorkbenchError) and str(home / "workbench.db") in str(caught.value)
    assert "append-only" in str(caught.value)
    conn.close()
    path = home / "workbench.db"
    data = bytearray(path.read_bytes())
    for start in range(4096, len(data), 4096):  # every page but the first (the header) is garbage
        data[start : start + 4096] = np.random.default_rng(start).bytes(4096)
    path.write_bytes(bytes(data))
    with pytest.raises(WorkspaceDatabaseError, match="damaged") as caught:
        with Gallery.open(Settings(home=home, user="t")) as gallery:
            gallery.counts()
    assert str(path) in str(caught.value)
    proc = run_process(home, "gallery", "stats")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "workbench.db" in proc.stderr


# -- onnxruntime ---------------------------------------------------------------------------------


def test_a_model_truncated_after_the_pack_was_made(tmp_path, session_home, t1_path):
    from workbench.models import read_pack
    from workbench.models.runtime import create_session

    home = tmp_path / "ws"
    shutil.copytree(session_home / "models", home / "models")
    pack = read_pack(home / "models", "opencv-zoo")
    recogniser = pack.folder / pack.recogniser_file
    full = recogniser.read_bytes()
    recogniser.write_bytes(full[: len(full) // 2])
    proc = run_process(home, "faces", t1_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "damaged" in proc.stderr and recogniser.name in proc.stderr and "re-import" in proc.stderr
    with pytest.raises(ModelPackError, match="onnxruntime cannot load"):  # the boundary itself, past the checksum
        create_session(full[: len(full) // 2])


# -- PyAV ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory, t1_rgb, t1_faces) -> Path:
    face = face_crop(t1_rgb, t1_faces[2], margin=0.8)
    frames = render([crossing(face, seconds=3.0, face_height=120)], seconds=3.0, fps=10)
    return write_video(tmp_path_factory.mktemp("fault-clip") / "clip.mp4", frames, fps=10)


def test_a_video_that_changes_between_planning_and_decoding(clip, tmp_path, engine):
    from workbench.footage import extract, plan_source
    from workbench.footage.pipeline import detect_chunk

    video = Path(shutil.copy(clip, tmp_path / "evidence.mp4"))
    plan = plan_source(video)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2] + np.random.default_rng(3).bytes(len(data) // 3))  # rewritten meanwhile
    with pytest.raises(FootageError, match="changed since it was indexed"):
        detect_chunk(plan.chunks[0], engine)
    video.write_bytes(data)
    result = extract(video, engine)
    assert result.tracks
    video.write_bytes(np.random.default_rng(4).bytes(len(data)))  # the source is garbage when thumbnails are asked for
    with pytest.raises(FootageError, match="evidence.mp4"):
        result.best_shots()


# -- numpy and Annoy ---------------------------------------------------------------------------------


def _search(home: Path, probe: Path, *extra) -> tuple[int, dict, str]:
    status, out, err = cli(home, "search", probe, "--case", CASE, "--json", *extra)
    return status, json.loads(out), err


def test_a_truncated_embeddings_file_falls_back_to_exact_search(home, probe_png, engine, monkeypatch):
    from workbench.engine import FaceEngine

    monkeypatch.setattr(FaceEngine, "from_settings", classmethod(lambda cls, settings, threads=0: engine))
    status, before, _ = _search(home, probe_png)
    npy = build_folder(home) / "embeddings.npy"
    npy.write_bytes(npy.read_bytes()[:100])  # cut inside the header
    manifest_path = home / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["embeddings.npy"]["bytes"] = 100  # so that numpy, not the size check, meets the damage
    manifest_path.write_text(json.dumps(manifest))
    status, stats, err = cli(home, "gallery", "stats", "--json")
    assert status == 0 and "embeddings.npy" in json.loads(stats)["index_problem"] or "damaged" in json.loads(stats)["index_problem"]
    assert "warning:" in err and "Traceback" not in err
    status, after, err = _search(home, probe_png)
    assert status == 0 and after["method"] == "exact" and "searching exactly" in err
    assert [c["subject_id"] for c in after["candidates"]] == [c["subject_id"] for c in before["candidates"]]
    assert cli(home, "gallery", "rebuild")[0] == 0
    assert json.loads(cli(home, "gallery", "stats", "--json")[1])["index_problem"] is None


def test_an_annoy_file_replaced_by_garbage_is_not_used(home, probe_png, engine, monkeypatch):
    from workbench.engine import FaceEngine

    monkeypatch.setattr(FaceEngine, "from_settings", classmethod(lambda cls, settings, threads=0: engine))
    (home / "workbench.toml").write_text("exact_search_below = 1\n")  # the index would be used
    ann = build_folder(home) / "faces.ann"
    ann.write_bytes(np.random.default_rng(5).bytes(ann.stat().st_size))  # same size: passes the size check
    status, stats, err = cli(home, "gallery", "stats", "--json")
    assert status == 0 and "faces.ann" in json.loads(stats)["index_problem"] and "Traceback" not in err
    status, found, err = _search(home, probe_png)
    assert status == 0 and found["method"] == "exact" and found["candidates"][0]["subject_id"] == "T1-2"


# -- the file system -------------------------------------------------------------------------------


def test_an_unwritable_reports_folder_is_refused_before_any_work(home, tmp_path, t1_rgb, t1_faces):
    if os.geteuid() != 0 and os.access("/", os.W_OK):
        pytest.skip("cannot make a folder unwritable here")
    incoming = tmp_path / "incoming"
    save(face_crop(t1_rgb, t1_faces[0]), incoming / "NEW-1" / "a.png")
    (incoming / "NEW-1" / "notes.txt").write_text("not an image: goes to the report")
    reports = home / "reports"
    reports.mkdir(exist_ok=True)
    reports.chmod(0o500)
    database = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)
    images_before = database.execute("SELECT COUNT(*) FROM custody_images").fetchone()[0]
    database.close()
    try:
        proc = run_process(home, "gallery", "enrol", incoming, drop_override=True)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "reports" in proc.stderr and "permission denied" in proc.stderr
        proc = run_process(home, "report", CASE, "--out", reports / "case.pdf", drop_override=True)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and "permission denied" in proc.stderr, proc.stderr
    finally:
        reports.chmod(0o700)
    database = sqlite3.connect(f"file:{home / 'workbench.db'}?mode=ro", uri=True)
    assert database.execute("SELECT COUNT(*) FROM custody_images").fetchone()[0] == images_before
    database.close()
    assert list(reports.iterdir()) == []
    audit_ok(home)


@pytest.fixture
def big_home(home) -> Path:
    """The workspace with 150 SYNTHETIC faces more, so that an index build is about 200 kB."""
    from workbench.gallery.store import Gallery

    from test_gallery_support import add_synthetic

    with Gallery.open(Settings(home=home, user="t")) as gallery:
        pack = gallery.pack_id
    add_synthetic(home, pack, identities=150)
    proc = run_process(home, "gallery", "rebuild", "--json")
    assert proc.returncode == 0, proc.stderr
    return home


def test_a_file_size_limit_during_a_rebuild_keeps_the_previous_index(big_home, probe_png):
    home = big_home
    sizes = {p.name: p.stat().st_size for p in build_folder(home).iterdir()}
    # Enough for SQLite's shared memory (32 kB) and the embeddings, not for the Annoy file.
    limit = (sizes["embeddings.npy"] + sizes["faces.ann"]) // 2
    assert 32_768 < sizes["embeddings.npy"] < limit < sizes["faces.ann"]
    before = index_state(home)
    proc = run_process(home, "gallery", "rebuild", limit_bytes=limit)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "file size limit" in proc.stderr and "previous index is kept" in proc.stderr
    assert index_state(home) == before  # same manifest, same build, no leftovers
    assert [p.name for p in (home / "index").iterdir() if p.name.startswith(".build-")] == []
    audit_ok(home)
    proc = run_process(home, "search", probe_png, "--case", CASE, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["candidates"][0]["subject_id"] == "T1-2"


def test_a_file_size_limit_during_a_report_export_keeps_the_previous_report(home):
    out = home.parent / "case.html"
    proc = run_process(home, "report", CASE, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    previous = out.read_bytes()
    assert len(previous) > 40_000
    entries = sqlite3.connect(home / "workbench.db").execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    proc = run_process(home, "report", CASE, "--out", out, limit_bytes=36_000)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "case.html" in proc.stderr and ("too large" in proc.stderr.lower() or "size limit" in proc.stderr)
    assert out.read_bytes() == previous
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".case.html.")] == []  # no half-written temp file
    assert sqlite3.connect(home / "workbench.db").execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == entries
    audit_ok(home)


# -- Dask: Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_during_a_dask_extraction_prints_one_line(template, tmp_path, t1_rgb, t1_faces):
    import psutil

    face = face_crop(t1_rgb, t1_faces[2], margin=0.8)
    long_clip = write_video(tmp_path / "long.mp4", render([crossing(face, seconds=180.0)], seconds=180.0, fps=5), fps=5)
    home = Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER"}
    env["WORKBENCH_FOOTAGE_SCAN"] = "full"  # every frame searched whole: the run lasts long enough to be interrupted
    args = [sys.executable, "-m", "workbench", "--home", str(home), "footage", "extract", str(long_clip), "--dask", "--chunk-s", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)

    def detecting() -> bool:
        """A worker has loaded onnxruntime: detection tasks run, so the cluster has started."""
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any("onnxruntime" in m.path for m in child.memory_maps()):
                    return True
        return False

    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None and not detecting():
            time.sleep(0.3)
        time.sleep(1.0)
        assert proc.poll() is None, "the extraction ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: to every process of the job
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted"], err


# -- the last line of defence -------------------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_and_a_log(home, monkeypatch):
    from workbench.commands import cases

    def broken(args, ws, out):
        raise RuntimeError("something nobody expected\nsecond line")

    monkeypatch.setattr(cases, "cmd_case_list", broken)
    status, out, err = cli(home, "case", "list")
    log = home / "logs" / "workbench.log"
    assert status == 1
    assert err.strip() == f"error: internal error (RuntimeError): something nobody expected; details in {log}"
    assert "Traceback" in log.read_text() and "something nobody expected" in log.read_text()
    assert log.stat().st_mode & 0o077 == 0 and (home / "logs").stat().st_mode & 0o077 == 0
    status, out, err = cli(home, "case", "list", "--json")
    assert status == 1 and json.loads(out)["type"] == "InternalError"
    status, _, err = cli(home, "--debug", "case", "list")  # --debug: the traceback on stderr instead
    assert status == 1 and "Traceback" in err and "RuntimeError: something nobody expected" in err


def test_an_os_error_names_the_path(home, monkeypatch):
    from workbench.commands import cases

    def denied(args, ws, out):
        raise PermissionError(13, "Permission denied", "/evidence/locked.mp4")

    monkeypatch.setattr(cases, "cmd_case_list", denied)
    status, _, err = cli(home, "case", "list")
    assert status == 1 and err.strip() == "error: /evidence/locked.mp4: permission denied"
