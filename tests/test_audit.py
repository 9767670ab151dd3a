"""The audit log: append-only in the database, hash-chained, and tampering is found and located."""

from __future__ import annotations

import sqlite3

import pytest

from workbench import audit
from workbench.db import connect


@pytest.fixture
def log(tmp_path):
    conn = connect(tmp_path / "workbench.db")
    for i in range(5):
        audit.append(conn, user=f"user{i % 2}", action="search.run", details={"search_id": i, "top": 20}, case_ref="CASE-1" if i % 2 else None)
    return conn


def _raw(conn):
    """A second connection with the append-only triggers dropped: what a tamperer would do."""
    path = conn.execute("PRAGMA database_list").fetchone()["file"]
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    return raw


def test_intact_log_verifies(log):
    result = audit.verify(log)
    assert result.ok and result.entries == 5 and result.first_bad_seq is None


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
    ("DELETE FROM audit_log WHERE seq = 4", 5),
    ("DELETE FROM audit_log WHERE seq = 5", None),  # see test_deleting_the_tail_is_caught_by_count
    ("UPDATE audit_log SET seq = seq + 10 WHERE seq = 2", 3),  # entry 3 now follows entry 1
])
def test_verify_finds_the_first_tampered_entry(log, tamper, first_bad):
    raw = _raw(log)
    raw.execute(tamper)
    result = audit.verify(log)
    if first_bad is None:
        assert result.ok and result.entries == 4
    else:
        assert not result.ok and result.first_bad_seq == first_bad, result


def test_reordering_entries_is_found(log):
    """Swap the positions of entries 2 and 3: the chain breaks at the first moved entry."""
    raw = _raw(log)
    raw.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
    raw.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
    raw.execute("UPDATE audit_log SET seq = 3 WHERE seq = -2")
    result = audit.verify(log)
    assert not result.ok and result.first_bad_seq == 2


def test_deleting_the_tail_is_caught_by_count(log):
    """A chain cannot show that its newest entries were cut off; the entry count in reports and
    the hash of the last entry (shown by ``audit verify``) let a reviewer compare."""
    last = audit.entries(log)[-1].hash
    _raw(log).execute("DELETE FROM audit_log WHERE seq = 5")
    result = audit.verify(log)
    assert result.entries == 4 and audit.entries(log)[-1].hash != last


def test_entries_filter_by_case_and_export(log, tmp_path):
    assert [e.seq for e in audit.entries(log, case_ref="CASE-1")] == [2, 4]
    out = tmp_path / "audit.csv"
    assert audit.export_csv(log, out, case_ref="CASE-1") == 2
    lines = out.read_text().splitlines()
    assert lines[0].startswith("seq,time_utc,user,action") and len(lines) == 3


def test_append_joins_the_callers_transaction(log):
    from workbench.db import transaction

    with pytest.raises(RuntimeError):
        with transaction(log):
            audit.append(log, user="u", action="gallery.remove", details={"subject_id": "S1"})
            raise RuntimeError("the change failed")
    assert audit.verify(log).entries == 5  # rolled back with the change it described
