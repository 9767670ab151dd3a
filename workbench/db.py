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
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import WorkbenchError

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
]


def utc_now() -> str:
    """The time every record and audit entry carries: ISO 8601, UTC, whole seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: str | Path, *, migrate: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) the workspace database, migrated to the current schema.

    The connection is in autocommit mode; group writes with :func:`transaction`.

    Raises:
        WorkbenchError: the file is not a SQLite database, or was written by a newer version.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode: a crash loses no committed transaction's integrity
        if migrate:
            _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        raise WorkbenchError(f"{path}: not a usable workbench database ({exc})") from exc
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = schema_version(conn)
    latest = len(MIGRATIONS)
    if current > latest:
        raise WorkbenchError(
            f"{path}: schema version {current} is newer than this workbench knows ({latest}); upgrade the workbench"
        )
    for version, _, sql in MIGRATIONS[current:]:
        with transaction(conn):
            # Re-check inside the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception (including Ctrl-C)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
