"""Append-only, hash-chained audit log.

Each entry stores the SHA-256 of the previous entry's hash plus its own canonical content, so
changing, deleting, inserting or reordering any entry breaks the chain from that point on, and
:func:`verify` names the first entry that fails. The database also refuses UPDATE and DELETE on
the table (triggers), so tampering needs deliberate work outside the workbench; the chain makes
even that visible.

Entries hold who, when (UTC), what action, which case, and the details needed to replay it:
ids, settings, hashes of files; never images, crops or embeddings.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .db import transaction
from .errors import AuditError

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time_utc: str
    user: str
    action: str
    case_ref: str | None
    details: dict
    prev_hash: str
    hash: str

    def as_dict(self) -> dict:
        return {
            "seq": self.seq,
            "time_utc": self.time_utc,
            "user": self.user,
            "action": self.action,
            "case_ref": self.case_ref,
            "details": self.details,
            "hash": self.hash,
        }


def _canonical(details: dict) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, seq: int, time_utc: str, user: str, action: str, case_ref: str | None, details_json: str) -> str:
    """SHA-256 over the previous hash and this entry's fields, unambiguously delimited."""
    payload = json.dumps([prev_hash, seq, time_utc, user, action, case_ref, details_json], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, *, user: str, action: str, details: dict, case_ref: str | None = None) -> AuditEntry:
    """Write one entry. Call inside the caller's transaction so the entry commits with the change.

    If no transaction is open, one is opened for this entry alone.
    """
    if not user or not action:
        raise AuditError("audit entries need a user and an action")
    if conn.in_transaction:
        return _append(conn, user, action, details, case_ref)
    with transaction(conn):
        return _append(conn, user, action, details, case_ref)


def _append(conn, user, action, details, case_ref) -> AuditEntry:
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq = (last["seq"] + 1) if last else 1
    prev = last["hash"] if last else GENESIS_HASH
    time_utc = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    details_json = _canonical(details)
    digest = entry_hash(prev, seq, time_utc, user, action, case_ref, details_json)
    conn.execute(
        "INSERT INTO audit_log (seq, time_utc, user, action, case_ref, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, time_utc, user, action, case_ref, details_json, prev, digest),
    )
    return AuditEntry(seq, time_utc, user, action, case_ref, details, prev, digest)


def entries(conn: sqlite3.Connection, *, case_ref: str | None = None) -> list[AuditEntry]:
    """Entries in order, optionally only those of one case."""
    sql = "SELECT * FROM audit_log" + (" WHERE case_ref = ?" if case_ref else "") + " ORDER BY seq"
    rows = conn.execute(sql, (case_ref,) if case_ref else ()).fetchall()
    return [
        AuditEntry(r["seq"], r["time_utc"], r["user"], r["action"], r["case_ref"], json.loads(r["details"]), r["prev_hash"], r["hash"])
        for r in rows
    ]


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq, "problem": self.problem}


def verify(conn: sqlite3.Connection) -> VerifyResult:
    """Recompute the chain; report the first entry (by position) whose link or hash fails."""
    rows = conn.execute("SELECT * FROM audit_log ORDER BY rowid").fetchall()
    prev = GENESIS_HASH
    for position, r in enumerate(rows, start=1):
        if r["seq"] != position:
            return VerifyResult(False, len(rows), r["seq"], f"entry at position {position} has sequence number {r['seq']} (deleted or reordered entries)")
        if r["prev_hash"] != prev:
            return VerifyResult(False, len(rows), r["seq"], f"entry {r['seq']} does not link to the entry before it")
        expected = entry_hash(prev, r["seq"], r["time_utc"], r["user"], r["action"], r["case_ref"], r["details"])
        if r["hash"] != expected:
            return VerifyResult(False, len(rows), r["seq"], f"entry {r['seq']} was changed after it was written (hash mismatch)")
        prev = r["hash"]
    return VerifyResult(True, len(rows))


def export_csv(conn: sqlite3.Connection, out: Path, *, case_ref: str | None = None) -> int:
    """Write entries (optionally one case's) to CSV for disclosure; returns the number written."""
    rows = entries(conn, case_ref=case_ref)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seq", "time_utc", "user", "action", "case_ref", "details", "hash"])
        for e in rows:
            writer.writerow([e.seq, e.time_utc, e.user, e.action, e.case_ref or "", _canonical(e.details), e.hash])
    return len(rows)
