"""The workspace database: one SQLite file in WAL mode, with versioned migrations.

Every module that stores something adds its tables as a migration to :data:`MIGRATIONS`
(never edit a released migration; add a new one). ``PRAGMA user_version`` holds the number of
migrations applied; opening the database applies the missing ones, each in its own
transaction, so a crash mid-migration leaves the previous version intact.

Writers use :func:`transaction` (``BEGIN IMMEDIATE``): one writer at a time, others wait up to
``BUSY_TIMEOUT_MS`` instead of failing, and readers are never blocked (WAL).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import WorkbenchError
from .fileio import PRIVATE_FILE, make_private_dir, os_reason, private_umask

BUSY_TIMEOUT_MS = 60_000

#: (version, what it adds, SQL). Version n must be the n-th entry.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "audit log: append-only, hash-chained",
        """
        CREATE TABLE audit_log (
            seq        INTEGER PRIMARY KEY,         -- 1, 2, 3, ... in append order
            time_utc   TEXT NOT NULL,               -- ISO 8601 with offset +00:00
            user       TEXT NOT NULL,
            action     TEXT NOT NULL,
            case_ref   TEXT,
            details    TEXT NOT NULL,               -- canonical JSON, no biometric data
            prev_hash  TEXT NOT NULL,
            hash       TEXT NOT NULL UNIQUE
        );
        CREATE INDEX audit_log_case ON audit_log(case_ref);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: updates are refused'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: deletes are refused'); END;
        """,
    ),
    (
        2,
        "gallery: subjects, custody images, faces with embeddings, removal tombstones",
        """
        CREATE TABLE subjects (
            subject_id    TEXT PRIMARY KEY,            -- custody reference, as given
            name          TEXT,
            dob           TEXT,                        -- YYYY-MM-DD
            sex           TEXT,                        -- M | F | X | U
            ethnicity     TEXT,                        -- code as recorded (e.g. IC1, W1)
            custody_date  TEXT,                        -- YYYY-MM-DD
            source        TEXT,                        -- free text: where the record came from
            created_utc   TEXT NOT NULL
        );
        CREATE TABLE custody_images (
            image_id      INTEGER PRIMARY KEY AUTOINCREMENT,
            subject_id    TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
            path          TEXT NOT NULL,               -- as given at enrolment
            sha256        TEXT NOT NULL,               -- of the file bytes
            size_bytes    INTEGER NOT NULL,
            width_px      INTEGER NOT NULL,
            height_px     INTEGER NOT NULL,
            capture_date  TEXT,                        -- YYYY-MM-DD
            faces_found   INTEGER NOT NULL,            -- > 1: the most prominent face was enrolled
            pack_id       TEXT NOT NULL,               -- name@sha256 of the pack that enrolled it
            enrolled_utc  TEXT NOT NULL,
            enrolled_by   TEXT NOT NULL,
            UNIQUE (sha256, pack_id)
        );
        CREATE INDEX custody_images_subject ON custody_images(subject_id);
        CREATE TABLE faces (
            face_id        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the index relies on it
            image_id       INTEGER NOT NULL REFERENCES custody_images(image_id) ON DELETE CASCADE,
            subject_id     TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
            x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,  -- pixels
            landmarks      BLOB NOT NULL,              -- 5x2 float32 pixels, ArcFace order
            detector_score REAL NOT NULL,
            quality        REAL,                       -- overall quality in [0, 1]
            quality_json   TEXT,                       -- FaceQuality fields
            embedding      BLOB NOT NULL,              -- D float32 little-endian, L2-normalised
            pack_id        TEXT NOT NULL
        );
        CREATE INDEX faces_image ON faces(image_id);
        CREATE INDEX faces_subject ON faces(subject_id);
        -- Face ids removed since they may sit in an index build: search hides them at once.
        -- Only the number is kept, nothing biometric; rows older than the current build are
        -- pruned by the next rebuild.
        CREATE TABLE gallery_removed_faces (
            seq      INTEGER PRIMARY KEY AUTOINCREMENT,
            face_id  INTEGER NOT NULL
        );
        CREATE TRIGGER faces_tombstone AFTER DELETE ON faces
            BEGIN INSERT INTO gallery_removed_faces (face_id) VALUES (old.face_id); END;
        """,
    ),
    (
        3,
        "cases: cases, recorded searches with probes and candidate lists, review decisions",
        """
        CREATE TABLE cases (
            reference     TEXT PRIMARY KEY,            -- crime or incident reference, as given
            offence       TEXT NOT NULL,
            purpose       TEXT NOT NULL,               -- why searching is necessary and proportionate
            officer       TEXT NOT NULL,               -- officer in charge
            status        TEXT NOT NULL CHECK (status IN ('open', 'closed', 'archived')),
            created_utc   TEXT NOT NULL,
            created_by    TEXT NOT NULL,
            updated_utc   TEXT NOT NULL
        );
        CREATE TABLE searches (
            search_id     INTEGER PRIMARY KEY AUTOINCREMENT,
            case_ref      TEXT NOT NULL REFERENCES cases(reference),
            time_utc      TEXT NOT NULL,
            user          TEXT NOT NULL,
            pack_id       TEXT NOT NULL,               -- name@sha256
            gallery_version TEXT NOT NULL,             -- JSON: index build id + checksum, live counts
            top           INTEGER NOT NULL,
            threshold     REAL,
            mode          TEXT NOT NULL,
            method        TEXT NOT NULL,               -- exact | index
            replay_of     INTEGER REFERENCES searches(search_id)
        );
        CREATE INDEX searches_case ON searches(case_ref);
        CREATE TABLE search_probes (
            search_id     INTEGER NOT NULL REFERENCES searches(search_id),
            probe_id      TEXT NOT NULL,
            position      INTEGER NOT NULL,            -- 0 = shown first (best quality)
            source_path   TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,
            frame_index   INTEGER,                     -- best shot (video) or NULL (still)
            timestamp_s   REAL,
            start_s       REAL,
            end_s         REAL,
            bbox_json     TEXT,                        -- best shot box, pixels
            quality       REAL,
            n_faces       INTEGER NOT NULL,
            crop_png      BLOB,                        -- the probe face as shown to reviewers
            embedding_dim INTEGER NOT NULL,
            embeddings    BLOB NOT NULL,               -- n_faces x dim float32: replays the search exactly
            PRIMARY KEY (search_id, probe_id)
        );
        CREATE TABLE search_candidates (
            search_id     INTEGER NOT NULL REFERENCES searches(search_id),
            probe_id      TEXT NOT NULL,
            rank          INTEGER NOT NULL,
            subject_id    TEXT NOT NULL,               -- kept as text: the custody record may be deleted later
            score         REAL NOT NULL,
            image_id      INTEGER,
            face_id       INTEGER,
            above_threshold INTEGER,                   -- 1, 0 or NULL (no threshold)
            PRIMARY KEY (search_id, probe_id, rank)
        );
        CREATE TABLE decisions (
            decision_id   INTEGER PRIMARY KEY AUTOINCREMENT,
            search_id     INTEGER NOT NULL REFERENCES searches(search_id),
            probe_id      TEXT NOT NULL,
            subject_id    TEXT NOT NULL,
            stage         TEXT NOT NULL CHECK (stage IN ('first', 'second')),
            reviewer      TEXT NOT NULL,
            verdict       TEXT CHECK (verdict IN ('possible match', 'no match', 'inconclusive')),
            agreement     TEXT CHECK (agreement IN ('confirm', 'disagree')),
            reason        TEXT NOT NULL CHECK (length(trim(reason)) > 0),
            time_utc      TEXT NOT NULL,
            supersedes    INTEGER REFERENCES decisions(decision_id),
            reviews       INTEGER REFERENCES decisions(decision_id),  -- second stage: the first decision reviewed
            CHECK ((stage = 'first' AND verdict IS NOT NULL AND agreement IS NULL AND reviews IS NULL)
                OR (stage = 'second' AND agreement IS NOT NULL AND reviews IS NOT NULL))
        );
        CREATE INDEX decisions_search ON decisions(search_id, probe_id, subject_id);
        -- Recorded searches and decisions are evidence of what happened: never edited.
        CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
            BEGIN SELECT RAISE(ABORT, 'decisions are never edited: record a new decision that supersedes it'); END;
        CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
            BEGIN SELECT RAISE(ABORT, 'decisions are never deleted'); END;
        CREATE TRIGGER search_candidates_no_update BEFORE UPDATE ON search_candidates
            BEGIN SELECT RAISE(ABORT, 'recorded candidate lists are never edited'); END;
        CREATE TRIGGER search_candidates_no_delete BEFORE DELETE ON search_candidates
            BEGIN SELECT RAISE(ABORT, 'recorded candidate lists are never deleted'); END;
        """,
    ),
    (
        4,
        "probes drawn by hand, and each candidate's per-probe-face scores",
        """
        ALTER TABLE search_probes ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;      -- 1: a person drew the box
        ALTER TABLE search_candidates ADD COLUMN per_probe_json TEXT;                -- JSON list: best score per probe face
        """,
    ),
    (
        5,
        "users and their roles; workspace facts (owner, whether declared user names are honoured)",
        """
        CREATE TABLE users (
            name          TEXT PRIMARY KEY,            -- as the authenticating environment names the person
            roles         TEXT NOT NULL,               -- JSON list of role names
            active        INTEGER NOT NULL DEFAULT 1,  -- 0: the user left; kept so the record stays readable
            added_utc     TEXT NOT NULL,
            added_by      TEXT NOT NULL
        );
        CREATE TABLE workspace_facts (
            key           TEXT PRIMARY KEY,
            value         TEXT NOT NULL
        );
        """,
    ),
    (
        6,
        "audit anchor: the workspace's random id, and from which entry the audit chain is keyed (HMAC)",
        """
        -- One row. The id names the audit key file and the checkpoint folder (both outside the
        -- workspace, see workbench.audit); entries from keyed_from on carry an HMAC-SHA256 made with
        -- that key, earlier ones (written before this migration) a plain SHA-256.
        CREATE TABLE audit_anchor (
            id            INTEGER PRIMARY KEY CHECK (id = 1),
            workspace_id  TEXT NOT NULL,               -- 32 hex characters, random
            keyed_from    INTEGER NOT NULL,            -- first keyed entry's seq
            key_id        TEXT,                        -- fingerprint of the key; set by the first keyed entry
            created_utc   TEXT NOT NULL
        );
        INSERT INTO audit_anchor (id, workspace_id, keyed_from, created_utc)
            VALUES (1, lower(hex(randomblob(16))), (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log),
                    strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
        CREATE TRIGGER audit_anchor_fixed BEFORE UPDATE ON audit_anchor
            WHEN new.id != old.id OR new.workspace_id != old.workspace_id OR new.keyed_from != old.keyed_from
                 OR new.created_utc != old.created_utc OR old.key_id IS NOT NULL
            BEGIN SELECT RAISE(ABORT, 'audit_anchor is fixed once written'); END;
        CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor
            BEGIN SELECT RAISE(ABORT, 'audit_anchor is never deleted'); END;
        """,
    ),
    (
        7,
        "operating threshold versions per pack, score calibrations; each search's version, calibration and notes",
        """
        -- See workbench.thresholds. Both tables are append-only: a search names the rows it used.
        CREATE TABLE threshold_versions (
            version           INTEGER PRIMARY KEY AUTOINCREMENT,
            pack_id           TEXT NOT NULL,           -- name@sha256
            threshold         REAL NOT NULL CHECK (threshold BETWEEN -1 AND 1),  -- cosine
            reason            TEXT NOT NULL CHECK (length(trim(reason)) > 0),
            set_by            TEXT NOT NULL,
            time_utc          TEXT NOT NULL,
            previous          REAL,                    -- the pack's threshold before this version
            evaluation_path   TEXT,                    -- the evaluation file it came from, as given
            evaluation_sha256 TEXT,
            evaluation_json   TEXT                     -- figures read from that file (JSON), if it was JSON
        );
        CREATE INDEX threshold_versions_pack ON threshold_versions(pack_id, version);
        CREATE TRIGGER threshold_versions_no_update BEFORE UPDATE ON threshold_versions
            BEGIN SELECT RAISE(ABORT, 'threshold versions are never edited: set a new version'); END;
        CREATE TRIGGER threshold_versions_no_delete BEFORE DELETE ON threshold_versions
            BEGIN SELECT RAISE(ABORT, 'threshold versions are never deleted'); END;
        CREATE TABLE score_calibrations (
            calibration_id    INTEGER PRIMARY KEY AUTOINCREMENT,
            pack_id           TEXT NOT NULL,
            time_utc          TEXT NOT NULL,
            user              TEXT NOT NULL,
            faces             INTEGER NOT NULL,        -- live gallery faces it was measured on
            subjects          INTEGER NOT NULL,
            pairs             INTEGER NOT NULL,        -- non-mated comparisons scored
            exhaustive        INTEGER NOT NULL,        -- 1: every pair; 0: random blocks
            max_pairs         INTEGER NOT NULL,
            seed              INTEGER NOT NULL,
            gallery_state     TEXT NOT NULL,           -- JSON: live faces, largest face id, removals, build
            quantiles_json    TEXT NOT NULL,           -- JSON: scores at quantile levels 0, 0.001, ... 1
            top_scores        BLOB NOT NULL            -- the highest scores, float32 little-endian, descending
        );
        CREATE INDEX score_calibrations_pack ON score_calibrations(pack_id, calibration_id);
        CREATE TRIGGER score_calibrations_no_update BEFORE UPDATE ON score_calibrations
            BEGIN SELECT RAISE(ABORT, 'calibrations are never edited: calibrate again'); END;
        CREATE TRIGGER score_calibrations_no_delete BEFORE DELETE ON score_calibrations
            BEGIN SELECT RAISE(ABORT, 'calibrations are never deleted'); END;
        ALTER TABLE searches ADD COLUMN threshold_version INTEGER REFERENCES threshold_versions(version);  -- in force, or NULL
        ALTER TABLE searches ADD COLUMN calibration_id INTEGER REFERENCES score_calibrations(calibration_id);
        ALTER TABLE searches ADD COLUMN notes_json TEXT;             -- JSON {"notes": [...], "warnings": [...]} as shown
        ALTER TABLE search_candidates ADD COLUMN fmr_at_score REAL;  -- estimated FMR at the score, as shown
        """,
    ),
    (
        8,
        "audit log index by action: finds the seal entries that start content hashing of later tables",
        """
        -- See workbench.audit_rows.LATER_KINDS: the entry that seals them is looked up by action.
        CREATE INDEX audit_log_action ON audit_log(action);
        """,
    ),
]


def utc_now() -> str:
    """The time every record and audit entry carries: ISO 8601, UTC, whole seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Whose database it is

#: ``PRAGMA application_id`` of a workbench database ("WBFR"), set when the database is created.
APPLICATION_ID = 0x57424652
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: tables SQLite itself may create.
_SQLITE_INTERNAL = ("sqlite_",)


def _tables_of(sql: str) -> set[str]:
    return {m.lower() for m in re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", sql, flags=re.IGNORECASE)}


def tables_by_version() -> dict[int, set[str]]:
    """Tables a workbench database holds at each schema version (from :data:`MIGRATIONS`)."""
    have: set[str] = set()
    out = {0: set()}
    for version, _, sql in MIGRATIONS:
        have = have | _tables_of(sql)
        out[version] = set(have)
    return out


class WorkspaceDatabaseError(WorkbenchError):
    """The workspace database cannot be opened or used: foreign, damaged, full, read-only..."""


def _foreign(path: Path, why: str) -> WorkspaceDatabaseError:
    return WorkspaceDatabaseError(
        f"{path}: {why}; refusing to use or change it. Give --home a workbench workspace folder "
        f"(a new folder makes a new workspace), or move this file away"
    )


def check_database_file(path: str | Path) -> None:
    """Refuse, before anything writes to it, a file that is not a workbench database.

    Accepted: no file or an empty one (a new database); a database stamped with
    :data:`APPLICATION_ID`; an unstamped SQLite database that holds nothing yet, or exactly the
    tables of its ``user_version`` in the workbench's history (made before the stamp existed:
    :func:`connect` stamps it). Reading uses ``immutable=1``, so no lock, journal or WAL file is
    created beside a foreign file and its bytes never change.

    Raises:
        WorkspaceDatabaseError: not a SQLite file, another application's database, or a SQLite
            database whose tables are not the workbench's.
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise WorkspaceDatabaseError(f"{path}: is a folder, not the workspace database file")
        if not stat.S_ISREG(info.st_mode):  # a pipe would block the read below forever
            raise WorkspaceDatabaseError(f"{path}: is not a regular file (device, pipe or socket), not the workspace database")
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        if os.path.islink(path):
            raise WorkspaceDatabaseError(f"{path}: is a broken symbolic link, not the workspace database") from None
        return
    except OSError as exc:
        raise WorkspaceDatabaseError(f"{path}: cannot be read ({os_reason(exc)})") from exc
    if not header:
        return
    if len(header) < 100 and _SQLITE_MAGIC.startswith(header[:16]):
        return  # another process is writing the first page of a new database: SQLite judges it
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _foreign(path, "is not a SQLite database (not a workbench database)")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id == APPLICATION_ID:
        return
    if application_id != 0:
        raise _foreign(path, f"is another application's SQLite database (application_id {application_id:#x})")
    wal = Path(f"{path}-wal")
    if wal.exists() or Path(f"{path}-shm").exists():
        # A write-ahead log or its index beside the file: the newest pages (the stamp among
        # them) may be in the log of a process that is running or was killed, so the file's own
        # header is stale. An immutable reader would ignore the log (kill tests lost committed
        # transactions that way), so SQLite itself reads the database here (read-only, log
        # included) and judges the stamp.
        uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
        try:
            probe = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                application_id = int(probe.execute("PRAGMA application_id").fetchone()[0])
            finally:
                probe.close()
        except sqlite3.Error as exc:
            raise _foreign(path, f"cannot be read as a SQLite database ({exc})") from exc
        if application_id == APPLICATION_ID:
            return
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro&immutable=1"
    try:
        probe = sqlite3.connect(uri, uri=True)
        try:
            version = int(probe.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0].lower() for r in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            probe.close()
    except sqlite3.Error as exc:
        raise _foreign(path, f"cannot be read as a SQLite database ({exc})") from exc
    tables = {t for t in tables if not t.startswith(_SQLITE_INTERNAL)}
    if version == 0 and not tables:
        return  # created but not yet migrated (another process may be doing it now)
    shown = ", ".join(sorted(tables)[:6]) + (" ..." if len(tables) > 6 else "")
    if version > len(MIGRATIONS):
        raise WorkspaceDatabaseError(
            f"{path}: schema version {version} is newer than this workbench knows ({len(MIGRATIONS)}) and the file carries no "
            "workbench stamp; upgrade the workbench if a newer one wrote it (the file was not changed)"
        )
    if version <= 0 or tables_by_version()[version] - tables:
        raise _foreign(path, f"is a SQLite database but not a workbench database (tables: {shown or 'none'}; schema version {version})")


# ---------------------------------------------------------------------------------------------
# Errors of SQLite after the database is open

_HINTS = (
    (("CORRUPT", "NOTADB"), "the database file is damaged; restore it from a backup (`workbench audit verify` checks the audit log)"),
    (("FULL",), "the disk is full or a file size limit was reached; nothing was written: free space and try again"),
    (("IOERR",), "the file system failed to read or write it; nothing was written"),
    (("READONLY",), "it is read-only for this user"),
    (("BUSY", "LOCKED"), "another process kept it busy for too long; try again"),
    (("CANTOPEN",), "it cannot be opened (check the folder and its permissions)"),
    (("PERM", "AUTH"), "access to it was refused"),
)
_translated: dict[type, type] = {}


def _error_class(original: type) -> type:
    """A WorkspaceDatabaseError that is also ``original`` (so ``except sqlite3.IntegrityError``
    in callers still matches), created once per SQLite error class."""
    cls = _translated.get(original)
    if cls is None:
        cls = _translated[original] = type(f"Workspace{original.__name__}", (WorkspaceDatabaseError, original), {})
    return cls


def translate_sqlite_error(exc: sqlite3.Error, path: str | Path) -> WorkspaceDatabaseError:
    """The package's error for a SQLite error on the database at ``path``, naming the file and
    saying what to do. The original message stays in the text (refusals by triggers say why)."""
    if isinstance(exc, WorkspaceDatabaseError):
        return exc
    name = getattr(exc, "sqlite_errorname", "") or ""
    message = str(exc)
    hint = next((h for codes, h in _HINTS if any(code in name for code in codes)), None)
    if hint is None and "malformed" in message:
        hint = _HINTS[0][1]
    if isinstance(exc, sqlite3.IntegrityError):
        text = f"{path}: refused: {message}"
    elif hint:
        text = f"{path}: {hint} ({message})"
    else:
        text = f"{path}: database error ({message})"
    new = _error_class(type(exc))(text)
    for attribute in ("sqlite_errorcode", "sqlite_errorname"):
        if hasattr(exc, attribute):
            setattr(new, attribute, getattr(exc, attribute))
    return new


class _Cursor(sqlite3.Cursor):
    """A cursor whose SQLite errors are :class:`WorkspaceDatabaseError` naming the file."""

    def _fail(self, exc: sqlite3.Error, sql: str | None = None) -> WorkspaceDatabaseError:
        error = translate_sqlite_error(exc, getattr(self.connection, "path", "workspace database"))
        if sql is not None:
            # For the traceback in the log, not for the person reading the message: which
            # statement failed (its text only, never its values).
            error.add_note(f"SQL: {' '.join(sql.split())[:300]}")
        return error

    def execute(self, sql, parameters=(), /):
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._fail(exc, sql) from exc
        except OverflowError as exc:  # a number beyond SQLite's 64-bit integers, usually from user input
            raise WorkspaceDatabaseError(f"a number is too large for the workspace database ({exc})") from exc

    def executemany(self, sql, seq_of_parameters, /):
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            raise self._fail(exc, sql) from exc

    def executescript(self, sql_script, /):
        try:
            return super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def fetchone(self):
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def fetchmany(self, size=None):
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def fetchall(self):
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def __next__(self):
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc


class Connection(sqlite3.Connection):
    """The workspace database connection: SQLite errors become :class:`WorkspaceDatabaseError`
    (subclasses of both it and the original SQLite class) naming the file, at this boundary."""

    path: str = "workspace database"
    #: (st_dev, st_ino) of the file, registered in _CONNECTED_FILES while this connection is open.
    file_key: tuple[int, int] | None = None

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script, /):
        return self.cursor().executescript(sql_script)

    def commit(self):
        try:
            return super().commit()
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.path) from exc

    def rollback(self):
        try:
            return super().rollback()
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.path) from exc

    def close(self):
        key, self.file_key = self.file_key, None
        if key is not None:
            _CONNECTED_FILES[key] -= 1
            if _CONNECTED_FILES[key] <= 0:
                del _CONNECTED_FILES[key]
        try:
            return super().close()
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.path) from exc


#: Open connections of this process per database file, by (st_dev, st_ino). While one is open the
#: file must never be opened outside SQLite: POSIX record locks belong to the process and the
#: file, so closing any other descriptor of it drops every lock SQLite holds there. Another
#: process then takes the database for its own, and its last close checkpoints and deletes the
#: write-ahead log this process is still writing to: later commits went to a deleted file,
#: invisible to others and lost if this process was killed (seen as enrolments that other
#: processes saw only at exit, and as committed transactions lost in kill tests).
_CONNECTED_FILES: dict[tuple[int, int], int] = {}


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


# ---------------------------------------------------------------------------------------------
# Opening


def connect(path: str | Path, *, migrate: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) the workspace database, migrated to the current schema.

    The connection is in autocommit mode; group writes with :func:`transaction`. The file is
    checked first (:func:`check_database_file`): a foreign file is refused and left unchanged.
    A new database, its WAL and its shared-memory file are owner-only (0600) whatever the umask
    (SQLite gives the WAL and SHM files the database file's permissions).

    Raises:
        WorkbenchError: the file is not a workbench database, is damaged, or was written by a
            newer version; the folder cannot be created.
    """
    path = Path(path)
    try:
        make_private_dir(path.parent)
    except OSError as exc:
        raise WorkspaceDatabaseError(f"{path.parent}: cannot create the workspace folder ({os_reason(exc)})") from exc
    key = _file_key(path)
    if key is None or key not in _CONNECTED_FILES:  # else checked when first opened, and must not be read now
        check_database_file(path)
    try:
        # Create the file owner-only before SQLite opens it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
        os.close(fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise WorkspaceDatabaseError(f"{path}: cannot create the workspace database ({os_reason(exc)})") from exc
    conn = None
    try:
        with private_umask():
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False, factory=Connection)
            conn.path = str(path)
            conn.file_key = _file_key(path)
            if conn.file_key is not None:
                _CONNECTED_FILES[conn.file_key] = _CONNECTED_FILES.get(conn.file_key, 0) + 1
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Checked again through SQLite (the WAL may hold a newer header than the file):
            # nothing has been written yet.
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            if application_id not in (0, APPLICATION_ID):
                raise _foreign(path, f"is another application's SQLite database (application_id {application_id:#x})")
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")  # needs the database to itself: only when not set yet
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode: a crash loses no committed transaction's integrity
            if migrate:
                _migrate(conn, path)
    except WorkbenchError:
        if conn is not None:
            _quiet_close(conn)
        raise
    except sqlite3.Error as exc:
        if conn is not None:
            _quiet_close(conn)
        raise WorkspaceDatabaseError(f"{path}: not a usable workbench database ({exc})") from exc
    return conn


def _quiet_close(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = schema_version(conn)
    latest = len(MIGRATIONS)
    if current > latest:
        raise WorkspaceDatabaseError(
            f"{path}: schema version {current} is newer than this workbench knows ({latest}); upgrade the workbench"
        )
    for version, _, sql in MIGRATIONS[current:]:
        with transaction(conn):
            # Re-check inside the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                continue
            if version == 1:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    if int(conn.execute("PRAGMA application_id").fetchone()[0]) != APPLICATION_ID:
        # A workbench database from before the stamp (its tables were checked): stamp it.
        with transaction(conn):
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buffer = [], ""
    for line in sql.splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, retried while another process holds the write lock.

    SQLite's busy handler waits for the lock, but some contention comes back as "database is
    locked" at once (a connection whose read snapshot another writer has moved past, WAL
    recovery by another process): those are retried here, with a jittered pause, until the same
    ``BUSY_TIMEOUT_MS`` has passed.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.1))


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception (including Ctrl-C).

    The rollback never hides the error that caused it: SQLite may already have rolled back
    (disk full, I/O error), and then there is nothing left to undo.
    """
    _begin_immediate(conn)
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
