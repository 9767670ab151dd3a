"""Files the workbench writes and reads: owner-only whatever the umask, nothing read from outside
the folder given, and a database that is not the workbench's is never changed.

* Privacy: the workspace folder is 0700 and every file in it 0600 (database, WAL and SHM, index
  builds, face crops, reports, exports, uploads, settings), under umask 022 and 002; an
  existing workspace that others can read gives one warning saying how to fix it.
* Reading: folder enrolment does not follow symbolic links unless asked; manifest paths must
  resolve under the manifest's folder or the ``manifest_roots`` setting; an upload's name never
  decides where it is kept.
* The database: an unrelated SQLite file is refused and left byte for byte unchanged (no WAL or
  SHM beside it); a new database is stamped with the workbench's application id; a workbench
  database from before the stamp is recognised by its tables and stamped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.db import APPLICATION_ID, connect

from conftest import face_crop, write_custody_folder
from factories import save
from videos import crossing, render, write_video

PRIVACY_SCRIPT = r"""
import json, os, stat, sys
from pathlib import Path
from workbench import Workspace
from workbench.settings_file import set_setting

home, models, custody, probe, clip, outside = map(Path, sys.argv[1:7])
ws = Workspace.open(home, user="privacy-test")       # creates the folder
os.symlink(models, home / "models")                  # the session's converted pack
ws.enrol(custody)                                    # custody holds a non-image: a report is written
ws.rebuild_index()
ws.new_case("OP-P", offence="robbery", purpose="privacy test")
ws.search_files("OP-P", [probe])
footage = ws.extract(clip)
footage.save_best_shots(home / "crops")
footage.save_best_shots(outside / "crops")
ws.export_report("OP-P", home / "reports" / "case.pdf")
ws.export_report("OP-P", outside / "case.html")
ws.export_audit(home / "exports" / "audit.csv")
ws.export_audit(outside / "audit.csv")
upload = ws.save_upload("../../a name chosen by someone.jpg", probe.read_bytes())
set_setting(ws.settings, "threshold", "0.4")
seen, wrong = [], []
for root in (home, outside):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            want = 0o700 if path.is_dir() else 0o600
            seen.append(str(path.relative_to(root.parent)))
            if mode != want:
                wrong.append(f"{path}: {mode:o}")
home_mode = stat.S_IMODE(home.stat().st_mode)
print(json.dumps({"seen": seen, "wrong": wrong, "home": f"{home_mode:o}", "upload": str(upload)}))
ws.close()
"""


@pytest.fixture(scope="module")
def privacy_inputs(tmp_path_factory, t1_rgb, t1_faces, tom_hanks_path, astronaut_path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("privacy-inputs")
    custody = write_custody_folder(root / "custody", t1_rgb, t1_faces, tom_hanks_path, astronaut_path)
    (custody / "HANKS-1" / "notes.txt").write_text("not an image: reported")
    face = face_crop(t1_rgb, t1_faces[2], margin=0.8)
    probe = save(face, root / "probe.png")
    clip = write_video(root / "clip.mp4", render([crossing(face, seconds=2.0, face_height=120)], seconds=2.0, fps=10), fps=10)
    return {"custody": custody, "probe": probe, "clip": clip}


def _run_with_umask(umask: int, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, preexec_fn=lambda: os.umask(umask), **kwargs)


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask-022", "umask-002"])
def test_everything_written_is_owner_only_whatever_the_umask(umask, tmp_path, session_home, privacy_inputs):
    home, outside = tmp_path / "new" / "ws", tmp_path / "outside"
    outside.mkdir()
    argv = [sys.executable, "-c", PRIVACY_SCRIPT, str(home), str(session_home / "models")]
    argv += [str(privacy_inputs[k]) for k in ("custody", "probe", "clip")] + [str(outside)]
    proc = _run_with_umask(umask, argv)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["wrong"] == [] and result["home"] == "700"
    seen = set(result["seen"])
    for expected in ("ws/workbench.db", "ws/workbench.db-wal", "ws/workbench.db-shm", "ws/workbench.toml", "ws/index/manifest.json"):
        assert expected in seen, sorted(seen)
    for prefix in ("ws/index/build-", "ws/crops/", "ws/reports/enrol-", "ws/reports/case.pdf", "ws/exports/audit.csv", "ws/uploads/"):
        assert any(s.startswith(prefix) for s in seen), (prefix, sorted(seen))
    for prefix in ("outside/crops/", "outside/case.html", "outside/audit.csv"):
        assert any(s.startswith(prefix) for s in seen), (prefix, sorted(seen))
    assert any(s.endswith("embeddings.npy") for s in seen)
    upload = Path(result["upload"])
    assert upload.parent.parent == home / "uploads" and len(upload.parent.name) == 64  # the folder is the content's sha256
    assert upload.name == "a_name_chosen_by_someone.jpg"  # the name given only labels the file, made safe
    # The command line: a new workspace under the same umask.
    cli_home = tmp_path / "cli" / "ws"
    proc = _run_with_umask(umask, [sys.executable, "-m", "workbench", "--home", str(cli_home), "case", "list"])
    assert proc.returncode == 0, proc.stderr
    assert oct(cli_home.stat().st_mode & 0o777) == "0o700" and oct(cli_home.parent.stat().st_mode & 0o777) == "0o700"
    assert (cli_home / "workbench.db").stat().st_mode & 0o777 == 0o600


def test_a_workspace_others_can_read_is_warned_about_once(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    home.chmod(0o755)
    (home / "notes.txt").write_text("made by hand")
    (home / "notes.txt").chmod(0o644)
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "--home", str(home), "case", "list"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("readable by other users") == 1
    assert f"chmod -R go-rwx {home}" in proc.stderr and "notes.txt is 644" in proc.stderr
    assert home.stat().st_mode & 0o777 == 0o755  # a warning, not a silent change
    home.chmod(0o700)
    (home / "notes.txt").chmod(0o600)
    proc = subprocess.run([sys.executable, "-m", "workbench", "--home", str(home), "case", "list"], capture_output=True, text=True, env=env)
    assert "readable by other users" not in proc.stderr


# -- reading only what was given -------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, session_home) -> Path:
    home = tmp_path / "ws"
    home.mkdir(mode=0o700)
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    return home


def enrol(home: Path, capsys, *argv) -> dict:
    assert main(["--home", str(home), "gallery", "enrol", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def report_rows(summary: dict) -> list[list[str]]:
    import csv

    with open(summary["report"], newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def test_symbolic_links_in_a_custody_folder_are_refused_unless_asked(home, tmp_path, capsys, t1_rgb, t1_faces, tom_hanks_path):
    outside = save(face_crop(t1_rgb, t1_faces[0]), tmp_path / "elsewhere" / "face.png")
    shutil_copy = __import__("shutil").copy
    folder = tmp_path / "custody"
    (folder / "REAL-1").mkdir(parents=True)
    shutil_copy(tom_hanks_path, folder / "REAL-1" / "custody.png")
    (folder / "LINKS-1").mkdir()
    os.symlink(outside, folder / "LINKS-1" / "face.png")  # an image outside the folder given
    os.symlink("/etc/passwd", folder / "LINKS-1" / "passwd.jpg")  # a system file
    os.symlink("loop.jpg", folder / "LINKS-1" / "loop.jpg")
    os.symlink(outside.parent, folder / "LINKED-SUBJECT")  # a whole subject folder elsewhere
    summary = enrol(home, capsys, folder)
    assert summary["enrolled"] == 1 and summary["invalid"] == 4
    rows = report_rows(summary)
    refused = {Path(r[2]).name: r[4] for r in rows if r[3] == "invalid"}
    assert set(refused) == {"face.png", "passwd.jpg", "loop.jpg", "LINKED-SUBJECT"}
    assert all("symbolic link, not followed" in reason and "--follow-symlinks" in reason for reason in refused.values())
    summary = enrol(home, capsys, folder, "--follow-symlinks")
    reasons = {Path(r[2]).name: (r[3], r[4]) for r in report_rows(summary)}
    # the linked image is enrolled; REAL-1 again and the same bytes through the linked folder are skipped
    assert summary["enrolled"] == 1 and summary["skipped"] == 2
    assert reasons["loop.jpg"] == ("unreadable", "symlink loop (symbolic links that point at each other)")
    assert reasons["passwd.jpg"][0] == "unreadable" and "not an image" in reasons["passwd.jpg"][1]


def test_manifest_paths_must_stay_under_its_folder_or_the_roots(home, tmp_path, capsys, tom_hanks_path, astronaut_path):
    import shutil

    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(astronaut_path, archive / "collins.png")
    batch = tmp_path / "batch"
    (batch / "img").mkdir(parents=True)
    shutil.copy(tom_hanks_path, batch / "img" / "hanks.png")
    os.symlink(archive / "collins.png", batch / "img" / "link.png")  # inside by name, outside once resolved
    manifest = batch / "manifest.csv"
    manifest.write_text(
        "subject_id,image_path\n"
        "P-1,img/hanks.png\n"
        "P-2,../archive/collins.png\n"
        f"P-3,{archive / 'collins.png'}\n"
        "P-4,img/link.png\n"
        "P-5,img/../../archive/collins.png\n"
    )
    summary = enrol(home, capsys, "--manifest", manifest)
    assert summary["enrolled"] == 1 and summary["invalid"] == 4
    for row in report_rows(summary):
        assert row[3] == "invalid" and "outside the manifest's folder" in row[4] and "manifest_roots" in row[4]
        assert row[0].startswith(f"{manifest}:")  # the row is named
    assert main(["--home", str(home), "settings", "set", "manifest_roots", str(archive)]) == 0
    capsys.readouterr()
    summary = enrol(home, capsys, "--manifest", manifest)
    assert summary["enrolled"] == 1 and summary["skipped"] == 4 and summary["invalid"] == 0  # collins once, then the same bytes


def test_an_upload_name_never_decides_the_path(home, tom_hanks_path):
    import hashlib

    from workbench import Workspace

    data = tom_hanks_path.read_bytes()
    with Workspace.open(home, user="uploader") as ws:
        for name in ("../../../../etc/cron.d/x.png", "/abs/path/x.png", "x.png\n.png", "..\\..\\win.png", "ok.png"):
            kept = ws.save_upload(name, data)
            assert kept.parent == home / "uploads" / hashlib.sha256(data).hexdigest(), kept
            assert kept.resolve().is_relative_to((home / "uploads").resolve()) and "/" not in kept.name
        with pytest.raises(Exception, match="not an image or video file name"):
            ws.save_upload("run.sh", data)


# -- the database ------------------------------------------------------------------------------------


def test_an_unrelated_sqlite_file_is_refused_and_never_changed(tmp_path, capsys):
    home = tmp_path / "ws"
    home.mkdir(mode=0o700)
    db = home / "workbench.db"
    other = sqlite3.connect(db)
    other.execute("PRAGMA journal_mode = WAL")  # a WAL-mode file: opening it carelessly would create -wal and -shm
    other.execute("CREATE TABLE invoices (number INTEGER, total REAL)")
    other.execute("INSERT INTO invoices VALUES (1, 9.5)")
    other.commit()
    other.close()
    before = db.read_bytes()
    for argv in (["case", "list"], ["gallery", "stats"], ["audit", "verify"], ["settings", "set", "top", "5"]):
        assert main(["--home", str(home), *argv]) == 1
        err = capsys.readouterr().err
        assert "not a workbench database" in err and str(db) in err and "Traceback" not in err
    assert db.read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["workbench.db"]


def test_a_new_database_is_stamped_and_an_old_one_recognised(tmp_path):
    new = connect(tmp_path / "new" / "workbench.db")
    assert new.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    new.execute("PRAGMA application_id = 0")  # as the workbench made them before the stamp
    new.close()
    old = connect(tmp_path / "new" / "workbench.db")
    assert old.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    old.close()
    empty = tmp_path / "empty" / "workbench.db"
    empty.parent.mkdir()
    empty.write_bytes(b"")  # an empty file is a new database
    connect(empty).close()
    partial = tmp_path / "partial.db"
    conn = sqlite3.connect(partial)
    conn.execute("PRAGMA user_version = 2")  # claims two migrations but lacks their tables
    conn.execute("CREATE TABLE audit_log (x)")
    conn.commit()
    conn.close()
    with pytest.raises(Exception, match="not a workbench database"):
        connect(partial)
