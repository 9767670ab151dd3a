"""The audit key and the checkpoints: what anchors the audit chain outside the workspace.

Design and reasons: :mod:`workbench.audit`. This module keeps the files:

* **the key**: 32 random bytes, hex, in a file of its own (``audit_key_file``, default
  ``~/.config/workbench/audit-<workspace id>.key``), created on first use with mode 0600 in a
  folder created 0700, never inside the workspace folder. A key file that others may read or
  change is refused, as ssh refuses a private key with loose permissions. Its *key id* (a
  fingerprint) is recorded in the workspace database and in every checkpoint, so a replaced
  key is named as such.
* **checkpoints**: the signed head of the chain (workspace id, database path, entry count, last
  hash, from which entry the chain is keyed, key id, time), one small JSON file per write in
  ``audit_checkpoint_dir`` (default ``~/.local/state/workbench/checkpoints/<workspace id>/``),
  written atomically (temporary file, then rename). The latest :data:`KEEP_LATEST` are kept, and
  the last of every UTC day.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .config import audit_locations, audit_locations_version
from .errors import AuditError

log = logging.getLogger(__name__)

KEY_HEADER = "workbench-audit-key/1"
CHECKPOINT_FORMAT = "workbench-audit-checkpoint/1"
#: checkpoints kept besides the last one of each day.
KEEP_LATEST = 20
#: old checkpoints are pruned after every this many entries (listing the folder costs more than a write).
PRUNE_EVERY = 10

_NAME = re.compile(r"^(?P<ws>[0-9a-f]{32})-(?P<count>\d{12})-(?P<day>\d{8})-(?P<where>[0-9a-f]{8})\.json$")


# -- where ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Locations:
    """Where one workspace's key and checkpoints are, and which database they belong to."""

    workspace_id: str
    db_path: str  # resolved; "" for an in-memory database
    key_file: Path
    checkpoint_dir: Path

    @property
    def where(self) -> str:
        """Short tag of the database path in checkpoint file names (copies of a workspace in
        other folders share its id, not its checkpoint names)."""
        return hashlib.sha256(self.db_path.encode()).hexdigest()[:8]


#: environment variables :func:`config.audit_locations` reads.
_LOCATION_ENV = (
    "WORKBENCH_AUDIT_KEY_FILE",
    "WORKBENCH_AUDIT_KEY_DIR",
    "WORKBENCH_AUDIT_CHECKPOINT_DIR",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "HOME",
)
_resolved: dict[str, str] = {}
_located: dict[tuple, Locations] = {}


def db_file(conn: sqlite3.Connection) -> str:
    """The resolved path of the connection's main database file ("" in memory)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            if not row[2]:
                return ""
            if row[2] not in _resolved:
                _resolved[row[2]] = str(Path(row[2]).resolve())
            return _resolved[row[2]]
    return ""


def locations(conn: sqlite3.Connection, workspace_id: str) -> Locations:
    """The key file and checkpoint folder of this workspace (settings: :func:`config.audit_locations`)."""
    path = db_file(conn)
    # audit_locations resolves paths: remember its answer while its inputs stay the same.
    inputs = (path, workspace_id, audit_locations_version(), *(os.environ.get(name) for name in _LOCATION_ENV))
    found = _located.get(inputs)
    if found is None:
        key, checkpoints = audit_locations(path or Path.cwd() / ":memory:")
        found = Locations(
            workspace_id,
            path,
            Path(str(key).replace("{workspace_id}", workspace_id)),
            Path(str(checkpoints).replace("{workspace_id}", workspace_id)),
        )
        _located[inputs] = found
    return found


def _private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) with mode 0700; refuse one others may write to."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        return
    mode = folder.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        raise AuditError(f"{folder}: others may write to this folder (mode {stat.S_IMODE(mode):o}); the audit key must not live there")


# -- the key ----------------------------------------------------------------------------------

_key_cache: dict[str, tuple[tuple, bytes]] = {}
_key_lock = threading.Lock()


def key_id(key: bytes) -> str:
    """The key's fingerprint: 16 hex characters, safe to record anywhere."""
    return hashlib.sha256(b"workbench-audit-key-id\n" + key).hexdigest()[:16]


def load_key(path: Path) -> bytes | None:
    """The key in ``path``, or None when there is no such file.

    Raises:
        AuditError: the file is readable or writable by others, unreadable, or not a key.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"cannot read the audit key at {path}: {exc}") from exc
    signature = (info.st_ino, info.st_mtime_ns, info.st_size, info.st_mode)
    with _key_lock:
        cached = _key_cache.get(str(path))
        if cached and cached[0] == signature:
            return cached[1]
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise AuditError(f"the audit key at {path} is open to others (mode {stat.S_IMODE(info.st_mode):o}): run chmod 600 {path}")
    try:
        lines = path.read_text(encoding="ascii").split()
        if len(lines) != 2 or lines[0] != KEY_HEADER or len(lines[1]) != 64:
            raise ValueError("not a workbench audit key")
        key = bytes.fromhex(lines[1])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AuditError(f"the audit key at {path} cannot be used: {exc}") from exc
    with _key_lock:
        _key_cache[str(path)] = (signature, key)
    return key


def create_key(path: Path) -> bytes:
    """A new random key in ``path`` (0600, folder 0700); if another process created one first,
    that one."""
    path = Path(path)
    _private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{KEY_HEADER}\n{secrets.token_bytes(32).hex()}\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never replaces a key that exists
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    log.info("created the audit key %s", path)
    key = load_key(path)
    if key is None:
        raise AuditError(f"the audit key at {path} vanished as it was created")
    return key


def mac(key: bytes, tag: str, fields) -> str:
    """HMAC-SHA256 (hex) of ``fields`` as compact JSON, after a tag naming what is signed."""
    payload = tag + "\n" + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


# -- checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed chain head, and the file it was read from."""

    workspace_id: str
    db_path: str
    count: int
    last_hash: str
    keyed_from: int
    key_id: str
    time_utc: str
    mac: str
    file: str = ""

    def body(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "workspace_id": self.workspace_id,
            "db_path": self.db_path,
            "count": self.count,
            "last_hash": self.last_hash,
            "keyed_from": self.keyed_from,
            "key_id": self.key_id,
            "time_utc": self.time_utc,
        }

    def as_dict(self) -> dict:
        """The signed document (what the checkpoint file holds), with the file it came from."""
        return {**self.body(), "mac": self.mac, "file": self.file}

    def signed_by(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, mac(key, CHECKPOINT_FORMAT, self.body()))


def sign_checkpoint(key: bytes, loc: Locations, *, count: int, last_hash: str, keyed_from: int) -> Checkpoint:
    time_utc = datetime.now(UTC).isoformat(timespec="microseconds")
    unsigned = Checkpoint(loc.workspace_id, loc.db_path, count, last_hash, keyed_from, key_id(key), time_utc, "")
    return dataclasses.replace(unsigned, mac=mac(key, CHECKPOINT_FORMAT, unsigned.body()))


def write_checkpoint(key: bytes, loc: Locations, *, count: int, last_hash: str, keyed_from: int) -> Path:
    """Sign the head and write it atomically into the checkpoint folder; prune old ones."""
    checkpoint = sign_checkpoint(key, loc, count=count, last_hash=last_hash, keyed_from=keyed_from)
    folder = loc.checkpoint_dir
    if not folder.is_dir():
        _private_folder(folder)
    day = checkpoint.time_utc[:10].replace("-", "")
    path = folder / f"{loc.workspace_id}-{count:012d}-{day}-{loc.where}.json"
    temporary = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    document = {k: v for k, v in checkpoint.as_dict().items() if k != "file"}
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    if count % PRUNE_EVERY == 0:
        _prune(loc)
    return path


def _prune(loc: Locations) -> None:
    """Keep this database's latest :data:`KEEP_LATEST` checkpoints and the last of each day."""
    mine = []
    with os.scandir(loc.checkpoint_dir) as found:
        for item in found:
            m = _NAME.match(item.name)
            if m and m["ws"] == loc.workspace_id and m["where"] == loc.where:
                mine.append((int(m["count"]), m["day"], item.path))
    if len(mine) <= KEEP_LATEST:
        return
    mine.sort(reverse=True)
    keep = {path for _, _, path in mine[:KEEP_LATEST]}
    last_of_day: dict[str, str] = {}
    for _, day, path in mine:  # highest count first
        last_of_day.setdefault(day, path)
    keep |= set(last_of_day.values())
    for _, _, path in mine:
        if path not in keep:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # another process pruned it


def read_checkpoints(loc: Locations) -> tuple[list[Checkpoint], list[str]]:
    """This workspace's checkpoints (any database path), highest count first, and the files
    that could not be read as one."""
    folder = loc.checkpoint_dir
    if not folder.is_dir():
        return [], []
    found, unreadable = [], []
    for path in sorted(folder.iterdir()):
        m = _NAME.match(path.name)
        if not m or m["ws"] != loc.workspace_id:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            found.append(
                Checkpoint(
                    str(data["workspace_id"]),
                    str(data["db_path"]),
                    int(data["count"]),
                    str(data["last_hash"]),
                    int(data["keyed_from"]),
                    str(data["key_id"]),
                    str(data["time_utc"]),
                    str(data["mac"]),
                    str(path),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            unreadable.append(f"{path} ({exc})")
    found.sort(key=lambda c: (c.count, c.time_utc), reverse=True)
    return found, unreadable
