"""Hostile tests of the audit log on a real workspace: each tamper attempt is detected and named.

Every test builds a real workspace with :class:`workbench.Workspace` (the session's engine): the
demo gallery enrolled, a search in the demo case, a first verdict by analyst1, a confirmation by
reviewer1, one custody subject removed. Then it tampers with the SQLite file the way someone with
the file but not the user's key could (triggers dropped, rows and entries rewritten, hashes
recomputed), or with the key and checkpoint files, and checks that ``audit verify`` fails and
names what was done. The module prints a tally at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench import Workspace, audit, audit_keys
from workbench.config import Settings
from workbench.db import connect
from workbench.demo import DEMO_CASE, build_demo_workspace

#: (tamper attempt, detected, what verify said)
TALLY: list[tuple[str, bool, str]] = []


@pytest.fixture(scope="module", autouse=True)
def tally(request):
    yield TALLY
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if not TALLY or reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line("")
        reporter.write_line(f"audit tamper attempts detected: {sum(found for _, found, _ in TALLY)}/{len(TALLY)}")
        for name, found, said in TALLY:
            reporter.write_line(f"  {'DETECTED' if found else 'MISSED  '}  {name}: {said[:150]}")


@pytest.fixture(autouse=True)
def audit_secrets(tmp_path, monkeypatch):
    """Key and checkpoints in this test's temporary folder (also for the CLI it starts)."""
    root = tmp_path / "secrets"
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(root / "keys" / "audit-{workspace_id}.key"))
    monkeypatch.setenv("WORKBENCH_AUDIT_CHECKPOINT_DIR", str(root / "checkpoints" / "{workspace_id}"))
    monkeypatch.setenv("WORKBENCH_DECLARED_USERS", "true")
    return root


@dataclass
class Scene:
    home: Path
    search_id: int
    probe_id: str
    rank1: str
    rank2: str
    first_id: int
    second_id: int
    removed: str

    @property
    def db(self) -> Path:
        return self.home / "workbench.db"


@pytest.fixture
def scene(tmp_path, session_home, engine) -> Scene:
    home = tmp_path / "ws"
    home.mkdir()
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings.load(home, user="analyst1"), engine=engine) as ws:
        built = build_demo_workspace(ws)
        run = ws.search_files(DEMO_CASE, [built["probe"]], top=5)
        top, second = run.candidates[0], run.candidates[1]
        first = ws.first_verdict(run.search_id, top.subject_id, "possible match", "same scar over the left eye", probe_id=top.probe_id)
        removed = next(s for s in ("DEMO-COLLINS", "DEMO-HANKS") if s not in {top.subject_id, second.subject_id})
        ws.remove_subject(removed, vacuum=False)
    with Workspace(Settings.load(home, user="reviewer1"), engine=engine) as ws:
        confirm = ws.second_verdict(run.search_id, top.subject_id, "confirm", "agree: scar and ear shape", probe_id=top.probe_id)
        check = ws.verify_audit()
        assert check.ok, check.lines()  # the untouched workspace verifies, with its removal
    return Scene(home, run.search_id, top.probe_id, top.subject_id, second.subject_id, first.decision_id, confirm.decision_id, removed)


def tamperer(scene: Scene) -> sqlite3.Connection:
    """A plain SQLite connection with every trigger dropped: the database refuses nothing."""
    raw = sqlite3.connect(scene.db, isolation_level=None)
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f'DROP TRIGGER "{name}"')
    return raw


def verify(scene: Scene) -> audit.VerifyResult:
    conn = connect(scene.db)
    try:
        return audit.verify(conn)
    finally:
        conn.close()


def locations(scene: Scene) -> audit_keys.Locations:
    conn = connect(scene.db)
    try:
        return audit_keys.locations(conn, audit.workspace_id(conn))
    finally:
        conn.close()


def entry_seq(scene: Scene, action: str, **details) -> int:
    conn = connect(scene.db)
    try:
        return next(e.seq for e in audit.entries(conn) if e.action == action and all(e.details.get(k) == v for k, v in details.items()))
    finally:
        conn.close()


def detected(name: str, result: audit.VerifyResult, *expected: str) -> None:
    """Record the attempt in the tally, then require a failed check that says each expected text."""
    said = " | ".join(result.problems) or (result.problem or "")
    found = not result.ok and all(any(text in p for p in (*result.problems, *result.warnings)) for text in expected)
    TALLY.append((name, found, said))
    assert not result.ok, f"{name}: verify passed"
    for text in expected:
        assert any(text in p for p in (*result.problems, *result.warnings)), f"{name}: {text!r} not in {result.lines()}"


def recompute_chain(raw: sqlite3.Connection, key: bytes | None) -> None:
    """Rewrite every link the way the chain is built: unkeyed SHA-256, or HMAC with ``key``."""
    prev = audit.GENESIS_HASH
    for seq, time_utc, user, action, case_ref, details in raw.execute(
        "SELECT seq, time_utc, user, action, case_ref, details FROM audit_log ORDER BY seq"
    ).fetchall():
        fields = (prev, seq, time_utc, user, action, case_ref, details)
        digest = audit.entry_hash(*fields) if key is None else audit.entry_mac(key, *fields)
        raw.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest


def edit_first_verdict_entry(raw: sqlite3.Connection, scene: Scene) -> int:
    """Change the first verdict in its decision row and in its audit entry, content hash included."""
    raw.execute("UPDATE decisions SET verdict = 'no match' WHERE decision_id = ?", (scene.first_id,))
    seq, details = next(
        (s, json.loads(d)) for s, a, d in raw.execute("SELECT seq, action, details FROM audit_log ORDER BY seq")
        if a == "review.first" and json.loads(d)["decision_id"] == scene.first_id
    )
    details["verdict"] = "no match"
    raw_conn_row = raw.execute(
        "SELECT decision_id, search_id, probe_id, subject_id, stage, reviewer, verdict, agreement, reason, time_utc, supersedes, reviews "
        "FROM decisions WHERE decision_id = ?", (scene.first_id,)
    ).fetchone()
    from workbench import audit_rows

    details["content"]["decision"][str(scene.first_id)] = audit_rows.row_hash("decision", str(scene.first_id), [raw_conn_row])
    raw.execute("UPDATE audit_log SET details = ? WHERE seq = ?", (audit._canonical(details), seq))
    return seq


# -- the untouched workspace --------------------------------------------------------------------


def test_the_untouched_workspace_verifies_and_its_report_says_so(scene, engine, tmp_path):
    result = verify(scene)
    assert result.ok and result.problems == () and result.warnings == ()
    assert result.rows_checked >= 20  # case, search, probes, candidates, 2 decisions, subjects, images, faces
    assert result.checkpoint["count"] == result.entries and result.checkpoint["file"].startswith(str(locations(scene).checkpoint_dir))
    removal = entry_seq(scene, "gallery.remove", subject_id=scene.removed)
    conn = connect(scene.db)
    entry = audit.entries(conn)[removal - 1]
    conn.close()
    assert entry.details["removed"]["subject"] == [scene.removed] and entry.details["removed"]["face"]
    assert not any("embedding" in json.dumps(e.details) for e in audit.entries(connect(scene.db)))
    with Workspace(Settings.load(scene.home, user="reviewer1"), engine=engine) as ws:
        out = ws.export_report(DEMO_CASE, tmp_path / "report.html")
        assert out["audit_ok"]
    text = (tmp_path / "report.html").read_text()
    assert "Audit verified" in text and "checked against checkpoint" in text and result.checkpoint["file"] in text


def test_the_command_line_verifies_and_exports_with_the_checkpoint(scene, tmp_path):
    proc = workbench_cli(scene.home, "audit", "verify", "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["ok"] is True and data["checkpoint"]["count"] == data["entries"]
    assert {"entries", "first_bad_seq", "problem", "rows_checked", "checkpoint"} <= data.keys()
    proc = workbench_cli(scene.home, "audit", "verify")
    assert proc.returncode == 0 and proc.stdout.startswith("audit verified:") and "checked against checkpoint" in proc.stdout
    out = tmp_path / "export" / "audit.csv"
    proc = workbench_cli(scene.home, "audit", "export", "--out", out)
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((out.parent / "audit.checkpoint.json").read_text())
    assert sidecar["verified"] is True and sidecar["checkpoint"]["mac"]
    assert sidecar["export"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def workbench_cli(home: Path, *args, user: str | None = "auditor1") -> subprocess.CompletedProcess:
    """The command line; ``user=None`` acts as the login (nothing is written on opening)."""
    who = ["--user", user] if user else []
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER"}
    command = [sys.executable, "-m", "workbench", "--home", str(home), *who, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


# -- the log itself -----------------------------------------------------------------------------


def test_deleting_the_last_entry(scene):
    last = verify(scene).entries
    tamperer(scene).execute("DELETE FROM audit_log WHERE seq = ?", (last,))
    result = verify(scene)
    detected("delete the last entry", result, f"entry {last} was deleted")
    assert result.first_bad_seq == last


def test_deleting_every_entry(scene):
    count = verify(scene).entries
    tamperer(scene).execute("DELETE FROM audit_log")
    result = verify(scene)
    detected("delete all entries", result, "the log has 0 entries, but checkpoint", f"entries 1-{count} were deleted", "has no audit entry")


def test_editing_an_entry_and_recomputing_the_chain_without_the_key(scene):
    raw = tamperer(scene)
    seq = edit_first_verdict_entry(raw, scene)
    recompute_chain(raw, None)
    result = verify(scene)
    detected("edit an entry, recompute all hashes (unkeyed)", result, "does not verify with the audit key", "is not the entry checkpoint")
    assert result.first_bad_seq == 1 and seq > 1


def test_editing_an_entry_and_recomputing_the_chain_with_another_key(scene):
    raw = tamperer(scene)
    edit_first_verdict_entry(raw, scene)
    recompute_chain(raw, secrets.token_bytes(32))
    result = verify(scene)
    detected("edit an entry, recompute all hashes (wrong key)", result, "does not verify with the audit key", "is not the entry checkpoint")


def test_replacing_the_key_and_recomputing_everything_with_it(scene):
    """The attacker swaps in a key of their own, rewrites the chain and the key id with it: the
    checkpoints, signed with the real key, give it away."""
    loc = locations(scene)
    raw = tamperer(scene)
    edit_first_verdict_entry(raw, scene)
    forged = secrets.token_bytes(32)
    recompute_chain(raw, forged)
    raw.execute("UPDATE audit_anchor SET key_id = ?", (audit_keys.key_id(forged),))
    loc.key_file.write_text(f"{audit_keys.KEY_HEADER}\n{forged.hex()}\n")
    result = verify(scene)
    detected("replace the key, recompute chain and key id with it", result, "is not signed with the audit key")


# -- rows, with the triggers dropped ------------------------------------------------------------


def test_changing_a_first_verdict(scene):
    tamperer(scene).execute("UPDATE decisions SET verdict = 'no match' WHERE decision_id = ?", (scene.first_id,))
    seq = entry_seq(scene, "review.first", decision_id=scene.first_id)
    result = verify(scene)
    detected("first verdict changed to 'no match'", result, f"decision {scene.first_id} changed since audit entry {seq} (review.first)")
    assert result.first_bad_seq == seq


def test_reassigning_a_second_review_to_the_first_reviewer(scene):
    tamperer(scene).execute("UPDATE decisions SET reviewer = 'analyst1' WHERE decision_id = ?", (scene.second_id,))
    seq = entry_seq(scene, "review.second", decision_id=scene.second_id)
    expected = f"decision {scene.second_id} changed since audit entry {seq} (review.second)"
    detected("second review reassigned to the first reviewer", verify(scene), expected)


def test_swapping_the_rank_1_and_rank_2_candidates(scene):
    raw = tamperer(scene)
    where = "search_id = ? AND probe_id = ?"
    raw.execute(f"UPDATE search_candidates SET rank = -1 WHERE {where} AND rank = 1", (scene.search_id, scene.probe_id))
    raw.execute(f"UPDATE search_candidates SET rank = 1 WHERE {where} AND rank = 2", (scene.search_id, scene.probe_id))
    raw.execute(f"UPDATE search_candidates SET rank = 2 WHERE {where} AND rank = -1", (scene.search_id, scene.probe_id))
    seq = entry_seq(scene, "search.run", search_id=scene.search_id)
    expected = f"the candidate list of search {scene.search_id} changed since audit entry {seq} (search.run)"
    detected("rank-1 and rank-2 candidates swapped", verify(scene), expected)


def test_changing_a_cases_purpose(scene):
    tamperer(scene).execute("UPDATE cases SET purpose = 'general trawl' WHERE reference = ?", (DEMO_CASE,))
    seq = entry_seq(scene, "case.new")
    detected("case purpose changed", verify(scene), f"case {DEMO_CASE} changed since audit entry {seq} (case.new)")


def test_moving_a_face_to_another_subject(scene):
    raw = tamperer(scene)
    face_id = raw.execute("SELECT face_id FROM faces WHERE subject_id = ?", (scene.rank2,)).fetchone()[0]
    raw.execute("UPDATE faces SET subject_id = ? WHERE face_id = ?", (scene.rank1, face_id))
    seq = next(
        e.seq for e in audit.entries(connect(scene.db)) if str(face_id) in e.details.get("content", {}).get("face", {})
    )
    detected("face moved to another subject", verify(scene), f"face {face_id} changed since audit entry {seq} (gallery.enrol)")


def test_a_decision_slipped_in_and_one_taken_out(scene):
    raw = tamperer(scene)
    raw.execute(
        "INSERT INTO decisions (search_id, probe_id, subject_id, stage, reviewer, verdict, reason, time_utc) "
        "VALUES (?, ?, ?, 'first', 'analyst1', 'no match', 'slipped in', '2024-01-01T00:00:00+00:00')",
        (scene.search_id, scene.probe_id, scene.rank2),
    )
    added = raw.execute("SELECT MAX(decision_id) FROM decisions").fetchone()[0]
    raw.execute("DELETE FROM decisions WHERE decision_id = ?", (scene.second_id,))
    detected(
        "decision inserted and another deleted",
        verify(scene),
        f"decision {added} has no audit entry",
        f"decision {scene.second_id} is gone, but no entry removed it",
    )


def test_a_removed_subject_put_back(scene):
    raw = tamperer(scene)
    raw.execute("INSERT INTO subjects (subject_id, created_utc) VALUES (?, '2024-01-01')", (scene.removed,))
    seq = entry_seq(scene, "gallery.remove", subject_id=scene.removed)
    expected = f"subject {scene.removed} exists, but audit entry {seq} (gallery.remove) removed it"
    detected("removed subject put back", verify(scene), expected)


def test_a_user_slipped_in_with_every_role(scene):
    roles = json.dumps(["administrator", "analyst", "reviewer", "technical"])
    tamperer(scene).execute(
        "INSERT INTO users (name, roles, active, added_utc, added_by) VALUES ('mallory', ?, 1, '2024-01-01', 'analyst1')", (roles,)
    )
    detected("user with every role slipped in", verify(scene), "user mallory has no audit entry")


def test_roles_switched_off_behind_the_administrators_back(scene, engine):
    with Workspace(Settings.load(scene.home, user="analyst1"), engine=engine) as ws:
        ws.set_user("reviewer1", ["reviewer"])  # from here on roles apply as assigned
    tamperer(scene).execute("UPDATE workspace_facts SET value = '0' WHERE key = 'roles_assigned'")  # everyone holds every role
    seq = entry_seq(scene, "users.set", name="reviewer1")
    expected = f"workspace setting roles_assigned changed since audit entry {seq} (users.set)"
    detected("roles switched off (team mode) in the database", verify(scene), expected)


def test_a_threshold_version_lowered_in_the_database(scene, engine):
    with Workspace(Settings.load(scene.home, user="analyst1"), engine=engine) as ws:
        ws.set_threshold(0.45, reason="validated on the unit's own pairs")
    tamperer(scene).execute("UPDATE threshold_versions SET threshold = 0.2")
    seq = entry_seq(scene, "threshold.set")
    detected("operating threshold lowered", verify(scene), f"threshold version 1 changed since audit entry {seq} (threshold.set)")


def test_the_false_match_rates_a_search_showed_rewritten(scene):
    tamperer(scene).execute("UPDATE search_candidates SET fmr_at_score = 1e-9 WHERE search_id = ?", (scene.search_id,))
    seq = entry_seq(scene, "search.run", search_id=scene.search_id)
    expected = f"the false match rates shown in search {scene.search_id} changed since audit entry {seq} (search.run)"
    detected("false match rates shown rewritten", verify(scene), expected)


# -- the key and the checkpoints ----------------------------------------------------------------


def test_replacing_the_key(scene):
    key_file = locations(scene).key_file
    key_file.write_text(f"{audit_keys.KEY_HEADER}\n{secrets.token_bytes(32).hex()}\n")
    detected("key file replaced", verify(scene), f"the key at {key_file}", "is not the key this log was written with")


def test_deleting_the_checkpoint_folder(scene):
    folder = locations(scene).checkpoint_dir
    shutil.rmtree(folder)
    result = verify(scene)
    detected("checkpoint folder deleted", result, f"no checkpoint to check the head against in {folder}")
    assert result.problems == () and result.checkpoint is None  # a warning, and not a pass of the head check


def test_deleting_the_checkpoints_and_the_last_entries(scene):
    """Without checkpoints the truncation itself cannot be shown; verify must not pass."""
    shutil.rmtree(locations(scene).checkpoint_dir)
    last = verify(scene).entries
    tamperer(scene).execute("DELETE FROM audit_log WHERE seq > ?", (last - 2,))
    detected("checkpoint folder and last two entries deleted", verify(scene), "no checkpoint to check the head against")


def test_a_copy_on_another_machine_without_its_key(scene, tmp_path, monkeypatch):
    copy = shutil.copytree(scene.home, tmp_path / "elsewhere" / "ws", symlinks=True)
    other = tmp_path / "other-machine"
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(other / "keys" / "audit-{workspace_id}.key"))
    monkeypatch.setenv("WORKBENCH_AUDIT_CHECKPOINT_DIR", str(other / "checkpoints" / "{workspace_id}"))
    proc = workbench_cli(copy, "audit", "verify", user=None)  # the login on the other machine: opening writes nothing
    assert proc.returncode == 1, proc.stdout + proc.stderr
    with sqlite3.connect(copy / "workbench.db") as raw:
        workspace = raw.execute("SELECT workspace_id FROM audit_anchor").fetchone()[0]
    expected = f"cannot verify: key not found at {other / 'keys' / f'audit-{workspace}.key'}"
    assert expected in proc.stdout
    data = json.loads(workbench_cli(copy, "audit", "verify", "--json", user=None).stdout)
    TALLY.append(("copy verified on a machine without its key", not data["ok"] and expected in data["problem"], data["problem"]))
    assert data["ok"] is False and expected in data["problem"]
    assert not (other / "keys").exists()  # verifying never makes a key
    # Acting under another declared name writes an entry on opening: that write needs the key too.
    declared = workbench_cli(copy, "audit", "verify", user="auditor1")
    assert declared.returncode == 1 and "key is not found at" in declared.stderr


# -- the report ---------------------------------------------------------------------------------


def test_the_report_says_plainly_what_failed(scene, engine, tmp_path):
    tamperer(scene).execute("UPDATE decisions SET verdict = 'no match' WHERE decision_id = ?", (scene.first_id,))
    with Workspace(Settings.load(scene.home, user="reviewer1"), engine=engine) as ws:
        out = ws.export_report(DEMO_CASE, tmp_path / "report.html")
    assert out["audit_ok"] is False
    text = (tmp_path / "report.html").read_text()
    assert "Audit verified" not in text and "AUDIT CHAIN CHECK FAILED" in text and "NOT VERIFIED" in text
    assert f"decision {scene.first_id} changed since audit entry" in text and "Checked against checkpoint" in text
    proc = workbench_cli(scene.home, "audit", "verify")
    assert proc.returncode == 1 and "AUDIT NOT VERIFIED" in proc.stdout and f"decision {scene.first_id} changed" in proc.stdout


def test_audit_appends_stay_cheap(tmp_path):
    """1,000 audited writes, each its own transaction and checkpoint (bench/ has the full figure)."""
    import time

    conn = connect(tmp_path / "bench" / "workbench.db")
    started = time.perf_counter()
    for i in range(1000):
        audit.append(conn, user="analyst1", action="search.run", case_ref="OP-1", details={"search_id": i})
    seconds = time.perf_counter() - started
    assert audit.verify(conn).ok
    assert len(os.listdir(locations_of(conn).checkpoint_dir)) == audit_keys.KEEP_LATEST
    assert seconds < 10, f"1,000 appends took {seconds:.1f} s"


def locations_of(conn) -> audit_keys.Locations:
    return audit_keys.locations(conn, audit.workspace_id(conn))
