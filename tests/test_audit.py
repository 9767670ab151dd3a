"""The audit log: append-only in the database, chained with a key kept outside the workspace,
anchored by signed checkpoints; tampering is found and located.

The tampering of a real workspace (cases, searches, decisions, custody records) is in
``test_audit_tamper.py``; here the log itself, the key and checkpoint files, and old workspaces.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from workbench import audit, audit_keys, audit_rows, db
from workbench.config import Settings, audit_locations
from workbench.db import connect
from workbench.errors import AuditError, ConfigError


@pytest.fixture(autouse=True)
def audit_secrets(tmp_path, monkeypatch):
    """Key and checkpoints in this test's temporary folder, never in the real home."""
    keys, checkpoints = tmp_path / "secrets" / "keys", tmp_path / "secrets" / "checkpoints"
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(keys / "audit-{workspace_id}.key"))
    monkeypatch.setenv("WORKBENCH_AUDIT_CHECKPOINT_DIR", str(checkpoints / "{workspace_id}"))
    return keys, checkpoints


@pytest.fixture
def log(tmp_path):
    conn = connect(tmp_path / "ws" / "workbench.db")
    for i in range(5):
        case_ref = "CASE-1" if i % 2 else None
        audit.append(conn, user=f"user{i % 2}", action="search.run", details={"search_id": i, "top": 20}, case_ref=case_ref)
    return conn


def _raw(conn):
    """A second connection with the append-only triggers dropped: what a tamperer would do."""
    path = conn.execute("PRAGMA database_list").fetchone()["file"]
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    return raw


def _locations(conn) -> audit_keys.Locations:
    return audit_keys.locations(conn, audit.workspace_id(conn))


def test_intact_log_verifies(log):
    result = audit.verify(log)
    assert result.ok and result.entries == 5 and result.first_bad_seq is None
    assert result.checkpoint["count"] == 5 and result.checkpoint["last_hash"] == audit.entries(log)[-1].hash
    assert result.lines()[0].startswith("audit verified: 5 entries") and "checked against checkpoint" in result.lines()[2]


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET user = 'someone else' WHERE seq = 2",
    "DELETE FROM audit_log WHERE seq = 2",
])
def test_database_refuses_updates_and_deletes(log, statement):
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        log.execute(statement)


@pytest.mark.parametrize("tamper, first_bad", [
    ("UPDATE audit_log SET details = '{\"search_id\":99,\"top\":20}' WHERE seq = 3", 3),
    ("UPDATE audit_log SET user = 'someone else' WHERE seq = 2", 2),
    ("DELETE FROM audit_log WHERE seq = 4", 5),  # entry 5 no longer links to the one before it
    ("DELETE FROM audit_log WHERE seq = 5", 5),  # the chain alone would not show it: the checkpoint does
    ("UPDATE audit_log SET seq = seq + 10 WHERE seq = 2", 3),  # entry 3 now follows entry 1
])
def test_verify_finds_the_first_tampered_entry(log, tamper, first_bad):
    raw = _raw(log)
    raw.execute(tamper)
    result = audit.verify(log)
    assert not result.ok and result.first_bad_seq == first_bad, result


def test_reordering_entries_is_found(log):
    """Swap the positions of entries 2 and 3: the chain breaks at the first moved entry."""
    raw = _raw(log)
    raw.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
    raw.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
    raw.execute("UPDATE audit_log SET seq = 3 WHERE seq = -2")
    result = audit.verify(log)
    assert not result.ok and result.first_bad_seq == 2


def test_deleting_the_tail_is_caught_by_the_checkpoint(log):
    """A chain cannot show that its newest entries were cut off; the checkpoint written after
    each write, outside the database, does."""
    _raw(log).execute("DELETE FROM audit_log WHERE seq >= 4")
    result = audit.verify(log)
    assert not result.ok and result.entries == 3 and result.first_bad_seq == 4
    assert "entries 4-5 were deleted" in result.problem and "recorded 5" in result.problem


def test_a_chain_recomputed_without_the_key_does_not_verify(log):
    """The attacker edits entry 2 and recomputes every hash the way the old, unkeyed chain did."""
    raw = _raw(log)
    rows = raw.execute("SELECT seq, time_utc, user, action, case_ref, details FROM audit_log ORDER BY seq").fetchall()
    prev = audit.GENESIS_HASH
    for seq, time_utc, user, action, case_ref, details in rows:
        user = "mallory" if seq == 2 else user
        digest = audit.entry_hash(prev, seq, time_utc, user, action, case_ref, details)
        raw.execute("UPDATE audit_log SET user = ?, prev_hash = ?, hash = ? WHERE seq = ?", (user, prev, digest, seq))
        prev = digest
    result = audit.verify(log)
    assert not result.ok and result.first_bad_seq == 1 and "does not verify with the audit key" in result.problem
    assert any("not the entry checkpoint" in p for p in result.problems)


def test_entries_filter_by_case_and_export(log, tmp_path):
    assert [e.seq for e in audit.entries(log, case_ref="CASE-1")] == [2, 4]
    out = tmp_path / "audit.csv"
    assert audit.export_csv(log, out, case_ref="CASE-1") == 2
    lines = out.read_text().splitlines()
    assert lines[0].startswith("seq,time_utc,user,action") and len(lines) == 3
    sidecar = json.loads(audit.checkpoint_sidecar(out).read_text())
    assert sidecar["verified"] is True and sidecar["export"]["entries"] == 2 and sidecar["export"]["case_ref"] == "CASE-1"
    assert sidecar["checkpoint"]["count"] == 5 and sidecar["checkpoint"]["mac"]


def test_append_joins_the_callers_transaction(log):
    from workbench.db import transaction

    written = set(os.listdir(_locations(log).checkpoint_dir))
    with pytest.raises(RuntimeError):
        with audit.transaction(log):
            audit.append(log, user="u", action="gallery.remove", details={"subject_id": "S1"})
            raise RuntimeError("the change failed")
    assert audit.verify(log).entries == 5  # rolled back with the change it described
    with pytest.raises(RuntimeError):
        with transaction(log):
            audit.append(log, user="u", action="gallery.remove", details={"subject_id": "S1"})
            raise RuntimeError("the change failed")
    result = audit.verify(log)
    assert result.ok and result.entries == 5  # no checkpoint of an entry that never committed
    assert set(os.listdir(_locations(log).checkpoint_dir)) == written


def test_an_entry_in_a_plain_transaction_is_checkpointed_once_committed(log):
    from workbench.db import transaction

    with transaction(log):
        audit.append(log, user="u", action="settings.change", details={"setting": "top"})
    result = audit.verify(log)  # writes the pending checkpoint of this process's committed entry first
    assert result.ok and result.checkpoint["count"] == 6


# -- the key ----------------------------------------------------------------------------------


def test_the_key_is_created_private_outside_the_workspace(log, audit_secrets):
    keys, _ = audit_secrets
    loc = _locations(log)
    assert loc.key_file.parent == keys and loc.key_file.name == f"audit-{audit.workspace_id(log)}.key"
    assert stat.S_IMODE(loc.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    anchor = audit.anchor(log)
    assert anchor.keyed_from == 1 and anchor.key_id == audit_keys.key_id(audit_keys.load_key(loc.key_file))
    assert len(anchor.workspace_id) == 32 and int(anchor.workspace_id, 16) >= 0


def test_a_key_others_can_read_is_refused(log):
    key_file = _locations(log).key_file
    os.chmod(key_file, 0o644)
    with pytest.raises(AuditError, match="chmod 600"):
        audit.append(log, user="u", action="x", details={})
    result = audit.verify(log)
    assert not result.ok and "cannot verify" in result.problem and "chmod 600" in result.problem


def test_writing_needs_the_key_once_the_chain_is_keyed(log):
    key_file = _locations(log).key_file
    key_file.rename(key_file.with_name("elsewhere.key"))
    with pytest.raises(AuditError, match="key is not found at"):
        audit.append(log, user="u", action="x", details={})
    assert not key_file.exists()  # no new key was made: it would start a chain nobody can check
    result = audit.verify(log)
    assert not result.ok and result.problem.startswith(f"cannot verify: key not found at {key_file}")


def test_key_and_checkpoints_must_be_outside_the_workspace(tmp_path, monkeypatch):
    home = tmp_path / "ws"
    with pytest.raises(ConfigError, match="outside the workspace"):
        Settings(home=home, audit_key_file=home / "audit.key")
    with pytest.raises(ConfigError, match="outside the workspace"):
        Settings(home=home, audit_checkpoint_dir=home / "checkpoints")
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(home / "keys" / "a.key"))
    with pytest.raises(ConfigError, match="outside the workspace"):
        audit_locations(home / "workbench.db")


def test_the_workspace_settings_file_cannot_name_the_key(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "workbench.toml").write_text(f'audit_key_file = "{tmp_path / "mine.key"}"\n')
    with pytest.raises(ConfigError, match="cannot be set in the workspace's own settings file"):
        Settings.load(home)


def test_settings_given_in_code_apply_to_the_workspace_log(tmp_path):
    home = tmp_path / "ws"
    settings = Settings(home=home, audit_key_file=tmp_path / "mine" / "k-{workspace_id}.key", audit_checkpoint_dir=tmp_path / "cps")
    conn = connect(settings.db_path)
    audit.append(conn, user="u", action="x", details={})
    loc = _locations(conn)
    assert loc.key_file == tmp_path / "mine" / f"k-{audit.workspace_id(conn)}.key" and loc.key_file.is_file()
    assert loc.checkpoint_dir == tmp_path / "cps" and len(list((tmp_path / "cps").glob("*.json"))) == 1
    assert audit.verify(conn).ok


# -- checkpoints ------------------------------------------------------------------------------


def test_checkpoints_keep_the_latest_twenty_and_one_per_day(log):
    loc = _locations(log)
    old = audit_keys.write_checkpoint(audit_keys.load_key(loc.key_file), loc, count=1, last_hash=audit.entries(log)[0].hash, keyed_from=1)
    old_day = old.with_name(old.name.replace(old.name.split("-")[2], "20240101"))
    old.rename(old_day)
    for i in range(35):  # entries 6 to 40: pruned after every tenth
        audit.append(log, user="u", action="x", details={"i": i})
    names = sorted(p.name for p in loc.checkpoint_dir.iterdir())
    assert len(names) == audit_keys.KEEP_LATEST + 1 and old_day.name in names
    counts = sorted(int(n.split("-")[1]) for n in names)
    assert counts == [1, *range(21, 41)]
    assert audit.verify(log).ok  # the old day's checkpoint agrees with the log too


def test_a_forged_checkpoint_is_named(log):
    loc = _locations(log)
    (path,) = [p for p in loc.checkpoint_dir.iterdir() if p.name.split("-")[1] == f"{5:012d}"]
    data = json.loads(path.read_text())
    data["count"] = 4
    data["last_hash"] = audit.entries(log)[3].hash
    path.write_text(json.dumps(data))
    result = audit.verify(log)
    assert not result.ok and any(f"checkpoint {path} is not signed with the audit key" in p for p in result.problems)


def test_no_checkpoint_is_a_warning_and_not_a_pass(log):
    loc = _locations(log)
    for path in loc.checkpoint_dir.iterdir():
        path.unlink()
    result = audit.verify(log)
    assert not result.ok and result.checkpoint is None and result.problems == ()
    assert result.warnings and result.warnings[0].startswith(f"no checkpoint to check the head against in {loc.checkpoint_dir}")
    assert result.problem == result.warnings[0]


# -- workspaces written before keyed auditing --------------------------------------------------


def test_an_old_unkeyed_workspace_keeps_verifying_and_is_sealed_by_its_next_write(tmp_path, monkeypatch):
    path = tmp_path / "old" / "workbench.db"
    with monkeypatch.context() as m:
        m.setattr(db, "MIGRATIONS", db.MIGRATIONS[:5])  # the schema before migration 6
        old = connect(path)
        old.execute(
            "INSERT INTO cases VALUES ('OP-1', 'robbery', 'identify the suspect', 'DC Shah', 'open', "
            "'2024-01-01', 'analyst1', '2024-01-01')"
        )
        for i in range(3):
            audit.append(old, user="analyst1", action="case.new" if i == 0 else "x", details={"i": i}, case_ref="OP-1")
        assert audit.anchor(old) is None and audit.verify(old).problems == ()
        old.close()

    conn = connect(path)  # migration 6: keyed from entry 4
    assert audit.anchor(conn).keyed_from == 4 and audit.anchor(conn).key_id is None
    before = audit.verify(conn)
    assert not before.ok and before.problems == () and before.entries == 3
    assert "written before keyed auditing" in " ".join(before.warnings)

    audit.append(conn, user="analyst1", action="case.close", details={}, case_ref="OP-1")
    actions = [e.action for e in audit.entries(conn)]
    assert actions == ["case.new", "x", "x", "audit.seal", "case.close"]
    assert audit.entries(conn)[3].details["content"]["case"].keys() == {"OP-1"}
    after = audit.verify(conn)
    assert after.ok and after.keyed_from == 4 and after.rows_checked == 1, after

    _raw(conn).execute("UPDATE cases SET purpose = 'anything' WHERE reference = 'OP-1'")
    changed = audit.verify(conn)
    assert not changed.ok and changed.problem == "case OP-1 changed since audit entry 4 (audit.seal)"


def test_a_downgraded_chain_is_caught(log):
    """Recompute everything as an old unkeyed chain and claim keying starts after it."""
    raw = _raw(log)
    raw.execute("DROP TRIGGER audit_anchor_fixed")
    raw.execute("UPDATE audit_anchor SET keyed_from = 6, key_id = NULL")
    rows = raw.execute("SELECT seq, time_utc, user, action, case_ref, details FROM audit_log ORDER BY seq").fetchall()
    prev = audit.GENESIS_HASH
    for seq, time_utc, user, action, case_ref, details in rows:
        digest = audit.entry_hash(prev, seq, time_utc, user, action, case_ref, details)
        raw.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    result = audit.verify(log)
    assert not result.ok and "says from entry 1" in result.problem


def test_rows_covered_from_a_later_schema_are_checked_from_their_seal_on(tmp_path):
    """A log written before users, thresholds and settings were hashed verifies as it did; from the
    seal entry that starts their coverage on, a change to them outside the workbench is named."""
    conn = connect(tmp_path / "ws" / "workbench.db")
    conn.execute("INSERT INTO users (name, roles, active, added_utc, added_by) VALUES ('ana', '[\"analyst\"]', 1, '2024-01-01', 'x')")
    older_log = [(1, "case.new", {"content": {}})]  # no "seals": written before the later kinds were covered
    assert audit_rows.check(conn, older_log).problems == ()
    seal = audit_rows.later_seal_details(conn, "upgrade")
    assert "ana" in seal["content"]["user"]
    sealed_log = [*older_log, (2, audit_rows.SEAL_ACTION, seal)]
    assert audit_rows.check(conn, sealed_log).problems == ()
    conn.execute("UPDATE users SET roles = '[\"administrator\"]' WHERE name = 'ana'")
    problems = [text for _, text in audit_rows.check(conn, sealed_log).problems]
    assert problems == ["user ana changed since audit entry 2 (audit.seal)"]
    assert audit_rows.check(conn, older_log).problems == ()  # the older log never covered it


def test_a_new_log_covers_every_kind_from_its_first_entry(tmp_path):
    conn = connect(tmp_path / "ws" / "workbench.db")
    first = audit.append(conn, user="ana", action="case.new", details={})
    second = audit.append(conn, user="ana", action="case.new", details={})
    assert sorted(first.details["seals"]) == sorted(audit_rows.LATER_KINDS)
    assert "seals" not in second.details and [e.action for e in audit.entries(conn)] == ["case.new", "case.new"]
