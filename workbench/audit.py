"""Append-only audit log: a keyed hash chain, content hashes of what it covers, signed checkpoints.

Entries hold who, when (UTC), what action, which case, and the details needed to replay it: ids,
settings, hashes of files and rows; never images, crops or embeddings.

What it must withstand. Someone who can write to the workspace database (a copy of the folder, a
share, an SQLite tool, triggers dropped) but does not hold the user's account: they can change
rows and entries, delete entries, and recompute every hash. Three layers answer that:

1. **A keyed chain.** Each entry carries HMAC-SHA256(key, previous hash and its own canonical
   fields), so changing, deleting, inserting or reordering an entry breaks the chain from there
   on, and a chain recomputed without the key does not verify. The key is a random 32-byte
   secret in a file outside the workspace (setting ``audit_key_file``; :mod:`.audit_keys`).
   Entries written before keying (before database migration 6) keep their plain SHA-256 links:
   ``audit_anchor.keyed_from`` says where the keyed part starts, and the first keyed entry of
   such a workspace is ``audit.seal``, which records the content hashes of every row then present.
2. **Rows.** Every change of a case, a recorded search (row, probes, candidate list), a decision,
   a custody subject, image or face puts the SHA-256 of the rows as written into its entry's
   details (:mod:`.audit_rows`); :func:`verify` recomputes them from the rows as they are now and
   names every row that differs from its latest entry, has none, or vanished without a removal.
3. **Checkpoints.** After every committed write the head of the chain (workspace id, database
   path, count, last hash, where keying starts, key id, time) is signed with the key and written
   as one small JSON file outside the database (setting ``audit_checkpoint_dir``). Deleting the
   newest entries, or all of them, leaves a chain that verifies on its own; the checkpoints
   show it. Reports and exports carry the checkpoint they were checked against, so the head also
   leaves the machine.

Why HMAC and not signatures. Certificate Transparency (RFC 6962 section 3.5, RFC 9162) signs each
tree head (version, time, tree size, root hash; the log id since 6962-bis) with the log's private
key, and CloudTrail signs an hourly digest file (hashes of the log files, the previous digest's
signature) with a per-region RSA key, because there the verifiers are other parties - browsers,
monitors, the customer - who must be able to check without being able to forge. Here the writer
and the verifier are the same installation: the key must sit on the workstation to sign every
entry, so whoever can read a private key there could sign with it as well as with an HMAC key.
A signature would add checking by a third party who holds only a public key (a disclosure
expert), at the cost of a new dependency (``cryptography`` is not installed) and a per-entry
check dozens of times slower. So the chain and the checkpoints use HMAC-SHA256 from the standard
library, with what fits taken from CT and CloudTrail: heads kept apart from the log they vouch
for, naming the log (workspace id) and the key (key id); every head still on disk checked
against the log, not only the newest; daily heads kept. Checkpoints carry a format field, so an
Ed25519 signature over them can be added later without touching the entries.

What it does not withstand: someone holding the user's account holds the key and the checkpoint
folder too, and can rewrite everything (copy checkpoints or reports off the machine to keep an
independent record). A workspace moved to another folder is checked against the checkpoints
written in its old place only as far as they agree: a longer history there is a warning. The
database's UPDATE/DELETE triggers stay as the first, cheap barrier.

Writing: call :func:`append` inside the caller's transaction so the entry commits with the
change. Open that transaction with :func:`transaction` (``BEGIN IMMEDIATE`` like
:func:`workbench.db.transaction`) so the checkpoint is written as soon as it commits; an entry
appended inside a plain database transaction is checkpointed by the next audited write, the next
:func:`verify`, or when the process exits. A workspace whose chain is keyed cannot be written
without its key: the write fails with "key not found" rather than starting an unverifiable chain.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import audit_keys, audit_rows
from .db import transaction as db_transaction
from .errors import AuditError, WorkbenchError

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
ENTRY_TAG = "workbench-audit-entry/2"
#: problems listed by name in a result; the rest are counted.
MAX_LISTED = 25


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
    """Unkeyed link of an entry written before keying: SHA-256 over the previous hash and its fields."""
    payload = json.dumps([prev_hash, seq, time_utc, user, action, case_ref, details_json], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def entry_mac(
    key: bytes, prev_hash: str, seq: int, time_utc: str, user: str, action: str, case_ref: str | None, details_json: str
) -> str:
    """Keyed link: HMAC-SHA256 over a version tag, the previous hash and the entry's fields."""
    fields = [ENTRY_TAG, prev_hash, seq, time_utc, user, action, case_ref, details_json]
    payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


# -- the anchor (migration 6) -------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    workspace_id: str
    keyed_from: int
    key_id: str | None


def anchor(conn: sqlite3.Connection) -> Anchor | None:
    """The workspace id and where keying starts; None for a database older than migration 6."""
    try:
        row = conn.execute("SELECT workspace_id, keyed_from, key_id FROM audit_anchor WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        return None
    return Anchor(row[0], int(row[1]), row[2]) if row else None


def workspace_id(conn: sqlite3.Connection) -> str | None:
    found = anchor(conn)
    return found.workspace_id if found else None


# -- writing ------------------------------------------------------------------------------------


def append(
    conn: sqlite3.Connection,
    *,
    user: str,
    action: str,
    details: dict,
    case_ref: str | None = None,
    covers: dict | None = None,
    removes: dict | None = None,
) -> AuditEntry:
    """Write one entry. Call inside the caller's transaction so the entry commits with the change.

    If no transaction is open, one is opened for this entry alone (and checkpointed).

    Args:
        covers: rows the change wrote, {kind: ids} (kinds: :data:`audit_rows.KINDS`); their
            content hashes go into ``details["content"]``.
        removes: rows the change deleted, {kind: ids}; named in ``details["removed"]``.

    Raises:
        AuditError: no user or action; the chain is keyed and its key is missing or another.
    """
    if not user or not action:
        raise AuditError("audit entries need a user and an action")
    if conn.in_transaction:
        return _append(conn, user, action, details, case_ref, covers, removes)
    with transaction(conn):
        return _append(conn, user, action, details, case_ref, covers, removes)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """:func:`workbench.db.transaction` that writes the checkpoint of the entries it appended
    once they are committed."""
    with db_transaction(conn):
        yield conn
    flush_checkpoint(conn)


def _append(conn, user, action, details, case_ref, covers, removes) -> AuditEntry:
    details = dict(details)
    if covers:
        try:
            details["content"] = audit_rows.hashes(conn, {k: v for k, v in covers.items() if v})
        except ValueError as exc:
            raise AuditError(str(exc)) from exc
    if removes:
        removed = audit_rows.with_companions(removes)
        details["removed"] = {kind: [str(i) for i in ids] for kind, ids in removed.items() if ids}
    found = anchor(conn)
    if found is None:  # opened without migrating: the old, unkeyed chain
        return _insert(conn, None, user, action, case_ref, details)
    loc = audit_keys.locations(conn, found.workspace_id)
    key = _writing_key(conn, found, loc)
    last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()[0]
    if last + 1 == found.keyed_from and found.keyed_from > 1:
        details_of_seal = {
            "reason": "first keyed entry: the rows written before keying, as they are now",
            "seals": sorted(audit_rows.LATER_KINDS),
            "content": audit_rows.everything(conn),
        }
        _insert(conn, key, user, audit_rows.SEAL_ACTION, None, details_of_seal)
    elif last == 0:  # a new log: coverage of every kind starts with its first entry
        details["seals"] = sorted(audit_rows.LATER_KINDS)
    elif not _later_kinds_sealed(conn):
        reason = "rows of thresholds, calibrations, users and workspace settings, and what searches showed of them, as they are now"
        _insert(conn, key, user, audit_rows.SEAL_ACTION, None, audit_rows.later_seal_details(conn, reason))
    entry = _insert(conn, key, user, action, case_ref, details)
    _remember(_Head(loc, key, entry.seq, entry.hash, found.keyed_from))
    return entry


def _later_kinds_sealed(conn: sqlite3.Connection) -> bool:
    """Whether the log holds the seal entry from which :data:`audit_rows.LATER_KINDS` are covered."""
    for (details,) in conn.execute("SELECT details FROM audit_log WHERE action = ? OR seq = 1", (audit_rows.SEAL_ACTION,)):
        try:
            if isinstance(json.loads(details).get("seals"), list):
                return True
        except (ValueError, AttributeError):
            continue  # a damaged entry: verify names it
    return False


def _writing_key(conn: sqlite3.Connection, found: Anchor, loc: audit_keys.Locations) -> bytes:
    key = audit_keys.load_key(loc.key_file)
    if key is None:
        keyed = found.key_id is not None or conn.execute("SELECT 1 FROM audit_log WHERE seq >= ? LIMIT 1", (found.keyed_from,)).fetchone()
        if keyed:
            raise AuditError(
                f"cannot write to the audit log: its key is not found at {loc.key_file} (the chain is keyed from entry "
                f"{found.keyed_from} with key id {found.key_id}); restore the key file there, or point audit_key_file "
                "(WORKBENCH_AUDIT_KEY_FILE) at it"
            )
        key = audit_keys.create_key(loc.key_file)
    kid = audit_keys.key_id(key)
    if found.key_id is None:
        conn.execute("UPDATE audit_anchor SET key_id = ? WHERE id = 1", (kid,))
    elif found.key_id != kid:
        raise AuditError(
            f"cannot write to the audit log: the key at {loc.key_file} (key id {kid}) is not the key it was written with "
            f"(key id {found.key_id})"
        )
    return key


def _insert(conn, key: bytes | None, user, action, case_ref, details) -> AuditEntry:
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq = (last[0] + 1) if last else 1
    prev = last[1] if last else GENESIS_HASH
    time_utc = datetime.now(UTC).isoformat(timespec="microseconds")
    details_json = _canonical(details)
    if key is None:
        digest = entry_hash(prev, seq, time_utc, user, action, case_ref, details_json)
    else:
        digest = entry_mac(key, prev, seq, time_utc, user, action, case_ref, details_json)
    conn.execute(
        "INSERT INTO audit_log (seq, time_utc, user, action, case_ref, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, time_utc, user, action, case_ref, details_json, prev, digest),
    )
    return AuditEntry(seq, time_utc, user, action, case_ref, json.loads(details_json), prev, digest)


# -- checkpoints after commit -------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    loc: audit_keys.Locations
    key: bytes
    count: int
    last_hash: str
    keyed_from: int


#: database file -> heads this process appended and has not checkpointed yet (oldest first).
_pending: dict[str, list[_Head]] = {}
_pending_lock = threading.Lock()
_exit_hook: list[bool] = []


def _remember(head: _Head) -> None:
    with _pending_lock:
        heads = _pending.setdefault(head.loc.db_path, [])
        heads.append(head)
        del heads[:-64]
        if not _exit_hook:
            atexit.register(_flush_at_exit)
            _exit_hook.append(True)


def flush_checkpoint(conn: sqlite3.Connection) -> Path | None:
    """Write the checkpoint of the newest committed entry this process appended to ``conn``'s
    database; the file written, or None (nothing pending, or it was rolled back)."""
    if conn.in_transaction:
        return None  # not committed yet
    db = audit_keys.db_file(conn)
    with _pending_lock:
        heads = _pending.pop(db, [])
    return _checkpoint_newest(heads, lambda seq: conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone())


def _checkpoint_newest(heads: list[_Head], lookup) -> Path | None:
    for head in sorted(heads, key=lambda h: h.count, reverse=True):
        row = lookup(head.count)
        if row is None or row[0] != head.last_hash:
            continue  # rolled back (or replaced since): not a head to vouch for
        try:
            return audit_keys.write_checkpoint(head.key, head.loc, count=head.count, last_hash=head.last_hash, keyed_from=head.keyed_from)
        except (OSError, WorkbenchError) as exc:
            log.error("audit checkpoint for entry %d not written to %s: %s", head.count, head.loc.checkpoint_dir, exc)
            return None
    return None


def _flush_at_exit() -> None:
    with _pending_lock:
        pending = dict(_pending)
        _pending.clear()
    for db, heads in pending.items():
        if not db:
            continue
        try:
            conn = sqlite3.connect(f"{Path(db).as_uri()}?mode=ro", uri=True, timeout=5)
            try:
                _checkpoint_newest(heads, lambda seq, c=conn: c.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone())
            finally:
                conn.close()
        except (sqlite3.Error, OSError):
            pass


# -- reading ------------------------------------------------------------------------------------


def entries(conn: sqlite3.Connection, *, case_ref: str | None = None) -> list[AuditEntry]:
    """Entries in order, optionally only those of one case."""
    sql = "SELECT * FROM audit_log" + (" WHERE case_ref = ?" if case_ref else "") + " ORDER BY seq"
    rows = conn.execute(sql, (case_ref,) if case_ref else ()).fetchall()
    return [
        AuditEntry(r["seq"], r["time_utc"], r["user"], r["action"], r["case_ref"], json.loads(r["details"]), r["prev_hash"], r["hash"])
        for r in rows
    ]


# -- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found. ``ok`` only when the chain, the rows and a checkpoint agree.

    Attributes:
        entries: entries in the log.
        first_bad_seq: the first entry concerned by a problem (for deleted entries: the first
            one missing), or None.
        problem: the first problem in words; ``problems`` all of them (the first
            :data:`MAX_LISTED` by name). A missing checkpoint is a warning, and not ok.
        rows_checked: covered rows (cases, searches, probe sets, candidate lists, decisions,
            subjects, images, faces) recomputed.
        checkpoint: the checkpoint the head was checked against (its signed fields and file).
    """

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    rows_checked: int = 0
    checkpoint: dict | None = None
    last_hash: str | None = None
    workspace_id: str | None = None
    keyed_from: int | None = None
    key_file: str | None = None
    checkpoint_dir: str | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "rows_checked": self.rows_checked,
            "checkpoint": self.checkpoint,
            "last_hash": self.last_hash,
            "workspace_id": self.workspace_id,
            "keyed_from": self.keyed_from,
            "key_file": self.key_file,
            "checkpoint_dir": self.checkpoint_dir,
        }

    @property
    def checkpoint_text(self) -> str:
        """Which checkpoint the head was checked against, in words."""
        cp = self.checkpoint
        if cp is None:
            return f"no checkpoint (looked in {self.checkpoint_dir})" if self.checkpoint_dir else "no checkpoint"
        disagrees = "" if cp.get("agrees", True) else ", which the log does not match"
        return f"checkpoint {cp['file']} ({cp['count']} entries, last hash {cp['last_hash']}, written {cp['time_utc']}{disagrees})"

    def lines(self) -> list[str]:
        """The result in words, one fact per line (the command line and the report print these)."""
        if self.ok:
            keyed = "" if self.keyed_from in (None, 1) else f" (keyed from entry {self.keyed_from})"
            out = [
                f"audit verified: {self.entries} entries{keyed}, last hash {self.last_hash or '-'}",
                f"rows checked: {self.rows_checked}, each matches its latest audit entry",
                f"checked against {self.checkpoint_text}",
            ]
        else:
            where = f", first bad entry {self.first_bad_seq}" if self.first_bad_seq is not None else ""
            out = [f"AUDIT NOT VERIFIED ({self.entries} entries{where}; {self.rows_checked} rows checked):"]
            out += [f"  - {p}" for p in self.problems]
            out.append(f"checked against {self.checkpoint_text}")
        out += [f"WARNING: {w}" for w in self.warnings]
        return out


def verify(conn: sqlite3.Connection) -> VerifyResult:
    """Check the chain (keyed part with the key), the covered rows, and the head against every
    checkpoint of this workspace that can be seen.

    Never writes to the database; writes a pending checkpoint of this process's own committed
    entries first.
    """
    flush_checkpoint(conn)
    rows = conn.execute("SELECT * FROM audit_log ORDER BY rowid").fetchall()
    check = _Check(len(rows), rows[-1]["hash"] if rows else None)
    found = anchor(conn)
    if found is None:
        _verify_chain(rows, None, None, check)
        check.warn("this database predates keyed auditing (schema below 6): its chain is unkeyed and nothing anchors its head")
        return check.result(head_ok=False)
    loc = audit_keys.locations(conn, found.workspace_id)
    check.about(found, loc)
    keyed = found.key_id is not None or len(rows) >= found.keyed_from
    try:
        key = audit_keys.load_key(loc.key_file)
    except AuditError as exc:
        check.fail(None, f"cannot verify: {exc}")
        return check.result(head_ok=False)
    if key is None and keyed:
        check.fail(None, f"cannot verify: key not found at {loc.key_file} (the chain is keyed from entry {found.keyed_from})")
        return check.result(head_ok=False)
    if key is not None and found.key_id is not None and audit_keys.key_id(key) != found.key_id:
        check.fail(
            None,
            f"the key at {loc.key_file} (key id {audit_keys.key_id(key)}) is not the key this log was written with "
            f"(key id {found.key_id}): the key was replaced, or it belongs to another workspace",
        )
    _verify_chain(rows, found, key, check)
    head_ok = _verify_head(rows, found, loc, key, keyed, check)
    _verify_rows(conn, rows, keyed, check)
    return check.result(head_ok=head_ok)


class _Check:
    """Collects problems and warnings while verifying."""

    def __init__(self, entries: int, last_hash: str | None):
        self.entries, self.last_hash = entries, last_hash
        self.problems: list[tuple[int | None, str]] = []
        self.warnings: list[str] = []
        self.rows_checked = 0
        self.checkpoint: dict | None = None
        self.context: dict = {}

    def about(self, found: Anchor, loc: audit_keys.Locations) -> None:
        self.context = {
            "workspace_id": found.workspace_id,
            "keyed_from": found.keyed_from,
            "key_file": str(loc.key_file),
            "checkpoint_dir": str(loc.checkpoint_dir),
        }

    def fail(self, seq: int | None, text: str) -> None:
        self.problems.append((seq, text))

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def result(self, *, head_ok: bool) -> VerifyResult:
        texts = [text for _, text in self.problems]
        if len(texts) > MAX_LISTED:
            texts = texts[:MAX_LISTED] + [f"... and {len(texts) - MAX_LISTED} more problem(s)"]
        seqs = [seq for seq, _ in self.problems if seq is not None]
        ok = not self.problems and head_ok
        problem = texts[0] if texts else (None if ok else (self.warnings[0] if self.warnings else "the head was not checked"))
        return VerifyResult(
            ok=ok,
            entries=self.entries,
            first_bad_seq=min(seqs) if seqs else None,
            problem=problem,
            problems=tuple(texts),
            warnings=tuple(self.warnings),
            rows_checked=self.rows_checked,
            checkpoint=self.checkpoint,
            last_hash=self.last_hash,
            **self.context,
        )


def _verify_chain(rows, found: Anchor | None, key: bytes | None, check: _Check) -> None:
    """Links and hashes in order; stops at the first entry that fails."""
    prev = GENESIS_HASH
    keyed_from = found.keyed_from if found else None
    for position, r in enumerate(rows, start=1):
        seq = r["seq"]
        if seq != position:
            check.fail(seq, f"entry at position {position} has sequence number {seq} (deleted or reordered entries)")
            return
        if r["prev_hash"] != prev:
            check.fail(seq, f"entry {seq} does not link to the entry before it")
            return
        fields = (prev, seq, r["time_utc"], r["user"], r["action"], r["case_ref"], r["details"])
        if keyed_from is not None and seq >= keyed_from:
            if key is None or not hmac.compare_digest(r["hash"], entry_mac(key, *fields)):
                check.fail(
                    seq,
                    f"entry {seq} ({r['action']}) does not verify with the audit key: it was changed after it was written, "
                    "or the chain was recomputed without the key",
                )
                return
        elif r["hash"] != entry_hash(*fields):
            check.fail(seq, f"entry {seq} was changed after it was written (hash mismatch)")
            return
        prev = r["hash"]


def _verify_rows(conn: sqlite3.Connection, rows, keyed: bool, check: _Check) -> None:
    parsed = []
    for r in rows:
        try:
            details = json.loads(r["details"])
        except ValueError:
            check.fail(r["seq"], f"entry {r['seq']} has details that are not JSON")
            continue
        parsed.append((r["seq"], r["action"], details if isinstance(details, dict) else {}))
    found = audit_rows.check(conn, parsed)
    check.rows_checked = found.rows_checked
    if not keyed and found.covered_entries == 0:
        if found.problems:
            check.warn(
                f"{len(found.problems)} row(s) were written before content hashing and are not covered yet: "
                "the next change in this workspace seals them into the keyed chain"
            )
        return
    for seq, text in found.problems:
        check.fail(seq, text)


def _verify_head(rows, found: Anchor, loc: audit_keys.Locations, key: bytes | None, keyed: bool, check: _Check) -> bool:
    """Check the log against every checkpoint of this workspace; True when one vouches for it."""
    n = len(rows)
    hashes = [r["hash"] for r in rows]
    checkpoints, unreadable = audit_keys.read_checkpoints(loc)
    for text in unreadable:
        check.fail(None, f"checkpoint {text} cannot be read")
    usable, here_bad, elsewhere = [], [], {}
    for cp in checkpoints:
        if key is None:
            check.fail(None, f"checkpoint {cp.file} exists, but the key to check it is not found at {loc.key_file}")
            continue
        if cp.workspace_id != found.workspace_id or not cp.signed_by(key):
            check.fail(
                None,
                f"checkpoint {cp.file} is not signed with the audit key at {loc.key_file} (key id {audit_keys.key_id(key)}; "
                f"it names key id {cp.key_id})",
            )
            continue
        consistent = cp.keyed_from == found.keyed_from and cp.count <= n and (cp.count == 0 or hashes[cp.count - 1] == cp.last_hash)
        if consistent:
            usable.append(cp)
        elif cp.db_path == loc.db_path:
            here_bad.append(cp)
        else:
            elsewhere.setdefault(cp.db_path, cp)  # highest count first
    if here_bad:
        _checkpoint_disagrees(here_bad[0], found, n, hashes, check)
        check.checkpoint = {**here_bad[0].as_dict(), "agrees": False}
        more = len(here_bad) - 1
        if more:
            check.fail(None, f"{more} older checkpoint(s) in {loc.checkpoint_dir} disagree with the log too")
    for path, cp in elsewhere.items():
        if cp.count > n:
            check.warn(
                f"a copy of this workspace at {path} had {cp.count} entries (checkpoint {cp.file}); this log has {n}: "
                "it is an older copy, or its newest entries were deleted"
            )
        else:
            check.warn(f"a copy of this workspace at {path} has a different history (checkpoint {cp.file}): the copies diverged")
    if here_bad:
        return False
    if not usable:
        if not checkpoints and n == 0 and not keyed:
            return True  # a new, empty log: nothing to anchor yet
        if not checkpoints:
            check.warn(
                f"no checkpoint to check the head against in {loc.checkpoint_dir}: the deletion of the newest entries, "
                "or of the whole log, would not show"
                + ("" if keyed else "; the log was written before keyed auditing, and its next change keys it and writes one")
            )
        return False
    best = max(usable, key=lambda c: (c.count, c.db_path == loc.db_path, c.time_utc))
    check.checkpoint = {**best.as_dict(), "agrees": True}
    if best.count < n:
        check.warn(f"entries {best.count + 1}-{n} are newer than the latest checkpoint (it was not written, or it was deleted)")
    return True


def _checkpoint_disagrees(cp: audit_keys.Checkpoint, found: Anchor, n: int, hashes: list[str], check: _Check) -> None:
    name = cp.file
    if cp.keyed_from != found.keyed_from:
        check.fail(
            None,
            f"the log says it is keyed from entry {found.keyed_from}, checkpoint {name} says from entry {cp.keyed_from}: "
            "the chain was rewritten",
        )
    elif cp.count > n:
        lost = f"entries {n + 1}-{cp.count} were deleted" if n + 1 < cp.count else f"entry {cp.count} was deleted"
        check.fail(n + 1, f"the log has {n} entries, but checkpoint {name} recorded {cp.count} on {cp.time_utc}: {lost}")
    else:
        check.fail(cp.count, f"entry {cp.count} is not the entry checkpoint {name} recorded on {cp.time_utc}: the log was rewritten")


# -- export -------------------------------------------------------------------------------------


def checkpoint_sidecar(out: Path) -> Path:
    """Where :func:`export_csv` writes the checkpoint of an export: ``NAME.checkpoint.json``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.checkpoint.json")


def export_csv(conn: sqlite3.Connection, out: Path, *, case_ref: str | None = None) -> int:
    """Write entries (optionally one case's) to CSV for disclosure; returns the number written.

    Beside it, ``NAME.checkpoint.json`` holds the CSV's sha256, the verification result and the
    signed checkpoint the log was checked against (:func:`checkpoint_sidecar`).
    """
    rows = entries(conn, case_ref=case_ref)
    check = verify(conn)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seq", "time_utc", "user", "action", "case_ref", "details", "hash"])
        for e in rows:
            writer.writerow([e.seq, e.time_utc, e.user, e.action, e.case_ref or "", _canonical(e.details), e.hash])
    sidecar = {
        "format": "workbench-audit-export/1",
        "export": {
            "file": out.name,
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
            "entries": len(rows),
            "case_ref": case_ref,
            "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "verified": check.ok,
        "verify": check.as_dict(),
        "checkpoint": check.checkpoint,
    }
    checkpoint_sidecar(out).write_text(json.dumps(sidecar, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return len(rows)


# what the stores name when they write or remove custody records
rows_of_images = audit_rows.of_images
rows_of_subject = audit_rows.of_subject
rows_hashes = audit_rows.hashes
