"""A whole case through the command line, as an analyst and a reviewer run it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pypdf import PdfReader

from workbench import audit
from workbench.db import connect

from conftest import face_crop, write_custody_folder
from factories import blur, jpeg, save, scale_face_to


def cli(home, user, *args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(home), "--user", user, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory, session_home, t1_rgb, t1_faces, tom_hanks_path, astronaut_path):
    """A workspace with t1's six people and two portraits enrolled through the CLI."""

    root = tmp_path_factory.mktemp("investigate")
    home = root / "ws"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    custody = write_custody_folder(root / "custody", t1_rgb, t1_faces, tom_hanks_path, astronaut_path)
    cli(home, "enroller", "gallery", "enrol", custody)
    return home


@pytest.fixture
def cctv(tmp_path, t1_rgb, t1_faces):
    face = t1_faces[4]
    degraded = jpeg(blur(scale_face_to(face_crop(t1_rgb, face, margin=1.0), face.width, 36), 1.0), 30)
    return save(degraded, tmp_path / "cctv_still.png")


def test_search_outside_a_case_is_refused(home, cctv):
    proc = cli(home, "alice", "search", cctv, check=False)
    assert proc.returncode == 1 and "must run inside an open case" in proc.stderr
    proc = cli(home, "alice", "search", cctv, "--case", "NOPE-1", check=False)
    assert proc.returncode == 1 and "no case 'NOPE-1'" in proc.stderr


def test_whole_case(home, cctv, tmp_path):
    cli(home, "alice", "case", "new", "OP-7", "--offence", "burglary", "--purpose", "identify the person on the doorbell camera")
    document = json.loads(cli(home, "alice", "search", cctv, "--case", "OP-7", "--top", "5", "--json").stdout)
    search_id = document["search_id"]
    assert document["case"] == "OP-7" and document["candidates"][0]["subject_id"] == "T1-4"
    assert set(document["probes"][0]) >= {"probe_id", "source", "start_s", "end_s", "quality", "candidates"}
    top, other = document["candidates"][0]["subject_id"], document["candidates"][1]["subject_id"]

    cli(home, "alice", "review", "first", search_id, top, "--verdict", "possible match", "--reason", "matching ear and hairline")
    proc = cli(home, "alice", "review", "second", search_id, top, "--confirm", "--reason", "me again", check=False)
    assert proc.returncode == 1 and "different person" in proc.stderr
    cli(home, "bob", "review", "second", search_id, top, "--confirm", "--reason", "agree on the ear")
    cli(home, "alice", "review", "first", search_id, other, "--verdict", "no match", "--reason", "different nose")
    cli(home, "bob", "review", "second", search_id, other, "--disagree", "--reason", "too blurred to exclude")

    shown = json.loads(cli(home, "carol", "case", "show", "OP-7", "--json").stdout)
    assert shown["review"] == {"agreed": 1, "disputed": 1, "pending": 3}

    replay = json.loads(cli(home, "carol", "search", "--replay", search_id, "--json").stdout)
    assert replay["replay"]["same"] is True and replay["replay_of"] == search_id

    report = tmp_path / "OP-7.pdf"
    cli(home, "carol", "report", "OP-7", "--out", report)
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(report).pages).split())
    for needle in ("OP-7", top, other, "matching ear and hairline", "too blurred to exclude", "bob", "search.replay"):
        assert needle in text, needle

    cli(home, "alice", "case", "close", "OP-7", "--reason", "suspect charged")
    proc = cli(home, "alice", "search", cctv, "--case", "OP-7", check=False)
    assert proc.returncode == 1 and "closed" in proc.stderr

    assert json.loads(cli(home, "carol", "audit", "verify", "--json").stdout)["ok"] is True
    actions = [e.action for e in audit.entries(connect(home / "workbench.db"), case_ref="OP-7")]
    assert actions == [
        "case.new",
        "search.run",
        "review.first",
        "review.second",
        "review.first",
        "review.second",
        "search.replay",
        "report.export",
        "case.closed",
    ]


def test_replay_after_a_removal_shows_the_difference(home, cctv):
    cli(home, "alice", "case", "new", "OP-8", "--offence", "theft", "--purpose", "identify the shoplifter")
    first = json.loads(cli(home, "alice", "search", cctv, "--case", "OP-8", "--top", "3", "--json").stdout)
    removed = first["candidates"][1]["subject_id"]
    cli(home, "admin", "gallery", "remove", removed)
    replay = json.loads(cli(home, "alice", "search", "--replay", first["search_id"], "--json").stdout)
    assert replay["replay"]["same"] is False
    assert any(removed in d and "no longer listed" in d for d in replay["replay"]["differences"])
    assert removed not in [c["subject_id"] for c in replay["candidates"]]


def test_case_admin_commands_and_audit_export(home, cctv, tmp_path):
    cli(home, "alice", "case", "new", "OP-9", "--offence", "fraud", "--purpose", "identify the card user at the ATM")
    search_id = json.loads(cli(home, "alice", "search", cctv, "--case", "OP-9", "--top", "2", "--json").stdout)["search_id"]
    status = json.loads(cli(home, "alice", "review", "status", search_id, "--json").stdout)
    assert [c["status"] for c in status["candidates"]] == ["pending", "pending"]
    listed = json.loads(cli(home, "alice", "case", "list", "--status", "open", "--json").stdout)["cases"]
    assert "OP-9" in [c["reference"] for c in listed]
    cli(home, "alice", "case", "close", "OP-9")
    cli(home, "alice", "case", "reopen", "OP-9", "--reason", "new footage")
    cli(home, "alice", "case", "archive", "OP-9")
    proc = cli(home, "alice", "case", "reopen", "OP-9", check=False)
    assert proc.returncode == 1 and "archived" in proc.stderr
    proc = cli(
        home,
        "bob",
        "review",
        "first",
        search_id,
        status["candidates"][0]["subject_id"],
        "--verdict",
        "no match",
        "--reason",
        "x",
        check=False,
    )
    assert proc.returncode == 1 and "archived" in proc.stderr
    out = tmp_path / "OP-9-audit.csv"
    exported = json.loads(cli(home, "carol", "audit", "export", "--case", "OP-9", "--out", out, "--json").stdout)
    rows = out.read_text().splitlines()
    assert exported["entries"] == len(rows) - 1 == 5  # new, search, closed, open, archived
    assert [r.split(",")[3] for r in rows[1:]] == ["case.new", "search.run", "case.closed", "case.open", "case.archived"]
    proc = cli(home, "carol", "audit", "export", "--case", "OP-404", "--out", tmp_path / "x.csv", check=False)
    assert proc.returncode == 1 and "no case 'OP-404'" in proc.stderr
