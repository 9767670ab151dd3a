"""The workspace database: WAL, foreign keys, migrations, and clear errors for bad files."""

from __future__ import annotations

import sqlite3

import pytest

from workbench.db import MIGRATIONS, connect, schema_version
from workbench.errors import WorkbenchError


def test_new_database_is_migrated_in_wal_mode(tmp_path):
    conn = connect(tmp_path / "workbench.db")
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_is_idempotent(tmp_path):
    connect(tmp_path / "workbench.db").close()
    assert schema_version(connect(tmp_path / "workbench.db")) == len(MIGRATIONS)


def test_database_from_a_newer_workbench_is_refused(tmp_path):
    path = tmp_path / "workbench.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(WorkbenchError, match="newer than this workbench"):
        connect(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "workbench.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkbenchError, match=str(path)):
        connect(path)


def test_migrations_are_numbered_in_order():
    assert [m[0] for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_a_second_connection_keeps_the_first_ones_locks(tmp_path):
    """Opening the database again in the same process never reads the file outside SQLite: closing
    such a descriptor dropped SQLite's locks, another process's last close then deleted the
    write-ahead log under the first connection, and its later commits were invisible (and lost on
    a kill)."""
    import subprocess
    import sys

    path = tmp_path / "ws" / "workbench.db"
    first = connect(path)
    second = connect(path)  # as Workspace does for its parts
    count = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT COUNT(*) FROM cases').fetchone()[0]); c.close()"
    subprocess.run([sys.executable, "-c", count, str(path)], check=True, capture_output=True)  # another process comes and goes
    first.execute(
        "INSERT INTO cases (reference, offence, purpose, officer, status, created_utc, created_by, updated_utc) "
        "VALUES ('C-1', 'o', 'p', 'x', 'open', 't', 'x', 't')"
    )
    seen = subprocess.run([sys.executable, "-c", count, str(path)], check=True, capture_output=True, text=True).stdout.strip()
    assert seen == "1" and (tmp_path / "ws" / "workbench.db-wal").exists()
    second.close()
    first.close()
