"""The gallery store: subjects, custody images and face embeddings in the workspace database.

:class:`Gallery` owns the database connection and the loaded index; it writes enrolled faces,
removes subjects, reports stats, rebuilds the index, and gives search a consistent
:class:`LiveView` of what may be returned (module map: :mod:`workbench.gallery`).

Store (SQLite, schema in :data:`workbench.db.MIGRATIONS`, version 2): ``subjects`` (custody
reference and descriptive fields), ``custody_images`` (path as given, sha256, size, capture date,
faces found), ``faces`` (box, landmarks, quality, embedding as float32 bytes, pack id). Every write
happens in one transaction together with its audit entry. A gallery never mixes packs.

What search sees (the live view) is the union of

1. the index build named by ``index/manifest.json`` (if its pack is the gallery's), minus the
   face ids removed since (the ``gallery_removed_faces`` tombstones a trigger writes on every
   delete from ``faces``), and
2. the faces enrolled after that build (face ids above the build's largest; ids are never
   reused), read from SQLite and searched exactly.

So a removal hides the subject from the very next search, and an enrolment is searchable at
once; ``gallery rebuild`` folds both into a new build.

Deleted biometric data: the connection runs with ``secure_delete`` (SQLite overwrites deleted
content with zeros), a removal checkpoints the WAL and, by default, VACUUMs the file, so the
embedding bytes are gone from ``workbench.db``. They remain in the index build files until the
next rebuild, which deletes old builds right after its swap.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .. import audit
from ..config import Settings
from ..db import connect, utc_now
from ..errors import GalleryError, PackMismatchError
from ..types import Face, PackId

log = logging.getLogger(__name__)
from .index import (
    LiveView,
    clear_index,
    load_build,
    new_build,
    read_manifest,
    verify_build,
)

#: rows read from SQLite per fetch when loading embeddings.
FETCH_ROWS = 20_000


def embedding_blob(embedding: np.ndarray) -> bytes:
    return np.ascontiguousarray(embedding, dtype="<f4").tobytes()


def blobs_to_matrix(blobs: list[bytes], dim: int | None = None) -> np.ndarray:
    """(N, D) float32 from N embedding blobs (one copy, no per-row arrays)."""
    if not blobs:
        return np.zeros((0, dim or 0), np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False)
    return matrix.reshape(len(blobs), -1)


@dataclass(frozen=True)
class SubjectRecord:
    """A subject's descriptive fields (validated by :mod:`.gallery_enrol` where they enter)."""

    subject_id: str
    name: str | None = None
    dob: str | None = None  # YYYY-MM-DD
    sex: str | None = None  # M | F | X | U
    ethnicity: str | None = None
    custody_date: str | None = None  # YYYY-MM-DD
    source: str | None = None


@dataclass(frozen=True)
class EnrolledImage:
    """One custody image ready to store: its file facts and its most prominent face."""

    subject: SubjectRecord
    path: str
    sha256: str
    size_bytes: int
    width_px: int
    height_px: int
    faces_found: int
    face: Face
    capture_date: str | None = None


class Gallery:
    """The custody gallery of one workspace. Open with :meth:`open`; close (or use ``with``).

    One connection per Gallery; not for use from several threads at once. Several processes may
    open the same workspace: SQLite serialises writers, rebuilds take a file lock, and readers
    see each committed change on their next search.
    """

    def __init__(self, settings: Settings, conn: sqlite3.Connection):
        self.settings = settings
        self.conn = conn
        self._live: LiveView | None = None

    @classmethod
    def open(cls, settings: Settings) -> Gallery:
        """The gallery in ``settings.home`` (database created and migrated if needed)."""
        conn = connect(settings.db_path)
        # Deleted rows are overwritten with zeros, not just unlinked: removals must not leave
        # embedding bytes in free pages.
        conn.execute("PRAGMA secure_delete = ON")
        return cls(settings, conn)

    def close(self) -> None:
        if self._live is not None and self._live.build is not None:
            self._live.build.close()
        self._live = None
        self.conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- packs ---------------------------------------------------------------------------------

    @property
    def pack_id(self) -> PackId | None:
        """The pack every stored embedding was made with; None while the gallery is empty."""
        row = self.conn.execute("SELECT pack_id FROM faces LIMIT 1").fetchone()
        return PackId.parse(row[0]) if row else None

    def check_pack(self, pack_id: PackId, *, what: str = "probe") -> None:
        """Raise :class:`PackMismatchError` unless ``pack_id`` is the gallery's pack (or it is empty)."""
        mine = self.pack_id
        if mine is not None and mine != pack_id:
            raise PackMismatchError(
                f"{what} embedded with pack {pack_id}, but the gallery in {self.settings.home} was enrolled with "
                f"pack {mine}; use `--pack {mine.name}` (a gallery never mixes packs)"
            )

    # -- enrolment writes ----------------------------------------------------------------------

    def enrolled_image(self, sha256: str, pack_id: PackId) -> sqlite3.Row | None:
        """The stored image with these bytes for this pack (subject_id, image_id), or None."""
        return self.conn.execute(
            "SELECT image_id, subject_id FROM custody_images WHERE sha256 = ? AND pack_id = ?", (sha256, str(pack_id))
        ).fetchone()

    def add_images(self, images: list[EnrolledImage], *, audit_details: dict) -> list[int | None]:
        """Store images with their faces in one transaction, with one audit entry; their image ids.

        Subjects are created as needed; descriptive fields given here replace stored ones
        (the latest manifest wins), empty ones keep what is stored. An image whose bytes this
        pack already enrolled (another enrolment got there first) is left out: its id is None.

        Raises:
            PackMismatchError: a face was embedded with another pack than the gallery's.
        """
        image_ids: list[int | None] = []
        with audit.transaction(self.conn):
            for image in images:
                if image.face.pack_id is None or image.face.embedding is None:
                    raise GalleryError(f"{image.path}: face has no embedding to enrol")
                self.check_pack(image.face.pack_id, what=f"image {image.path}")
                if self.enrolled_image(image.sha256, image.face.pack_id) is not None:
                    image_ids.append(None)
                    continue
                self._upsert_subject(image.subject)
                image_ids.append(self._insert_image(image))
            stored = sum(i is not None for i in image_ids)
            audit.append(
                self.conn,
                user=self.settings.user,
                action="gallery.enrol",
                details={**audit_details, "images": stored},
                covers=audit.rows_of_images(self.conn, [i for i in image_ids if i is not None]),
            )
        return image_ids

    def update_subject(self, subject: SubjectRecord) -> None:
        """Refresh an existing subject's descriptive fields (no-op for an unknown subject)."""
        if self.subject(subject.subject_id) is None:
            return
        with audit.transaction(self.conn):
            before = audit.rows_hashes(self.conn, {"subject": [subject.subject_id]})
            self._upsert_subject(subject)
            if audit.rows_hashes(self.conn, {"subject": [subject.subject_id]}) != before:
                audit.append(
                    self.conn,
                    user=self.settings.user,
                    action="gallery.subject_update",
                    details={"subject_id": subject.subject_id},
                    covers={"subject": [subject.subject_id]},
                )

    def _upsert_subject(self, s: SubjectRecord) -> None:
        self.conn.execute(
            """
            INSERT INTO subjects (subject_id, name, dob, sex, ethnicity, custody_date, source, created_utc)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (subject_id) DO UPDATE SET
                name = COALESCE(excluded.name, name), dob = COALESCE(excluded.dob, dob),
                sex = COALESCE(excluded.sex, sex), ethnicity = COALESCE(excluded.ethnicity, ethnicity),
                custody_date = COALESCE(excluded.custody_date, custody_date),
                source = COALESCE(excluded.source, source)
            """,
            (s.subject_id, s.name, s.dob, s.sex, s.ethnicity, s.custody_date, s.source, utc_now()),
        )

    def _insert_image(self, image: EnrolledImage) -> int:
        face = image.face
        pack = str(face.pack_id)
        cursor = self.conn.execute(
            """
            INSERT INTO custody_images (subject_id, path, sha256, size_bytes, width_px, height_px, capture_date,
                                        faces_found, pack_id, enrolled_utc, enrolled_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                image.subject.subject_id,
                image.path,
                image.sha256,
                image.size_bytes,
                image.width_px,
                image.height_px,
                image.capture_date,
                image.faces_found,
                pack,
                utc_now(),
                self.settings.user,
            ),
        )
        image_id = int(cursor.lastrowid)
        quality = face.quality
        self.conn.execute(
            """
            INSERT INTO faces (image_id, subject_id, x1, y1, x2, y2, landmarks, detector_score, quality, quality_json,
                               embedding, pack_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                image_id,
                image.subject.subject_id,
                *face.bbox_xyxy,
                np.asarray(face.landmarks, "<f4").tobytes(),
                float(face.detector_score),
                quality.score if quality else None,
                json.dumps(quality.as_dict()) if quality else None,
                embedding_blob(face.embedding),
                pack,
            ),
        )
        return image_id

    # -- removal -------------------------------------------------------------------------------

    def remove_subject(self, subject_id: str, *, vacuum: bool = True) -> dict:
        """Delete a subject with all their images, faces and embeddings; hidden from search at once.

        One transaction deletes the rows and writes the audit entry (who, when, which subject,
        how many images and faces: nothing biometric). Then the WAL is checkpointed and, with
        ``vacuum``, the database file rewritten, so the embedding bytes are gone from it. The
        index build still holds them until the next ``gallery rebuild``.

        Raises:
            GalleryError: no such subject.
        """
        with audit.transaction(self.conn):
            if self.subject(subject_id) is None:
                raise GalleryError(f"subject {subject_id!r} is not in the gallery in {self.settings.home}; nothing removed")
            images = self.conn.execute("SELECT COUNT(*) FROM custody_images WHERE subject_id = ?", (subject_id,)).fetchone()[0]
            faces = self.conn.execute("SELECT COUNT(*) FROM faces WHERE subject_id = ?", (subject_id,)).fetchone()[0]
            removed = audit.rows_of_subject(self.conn, subject_id)  # ids only: the audit entry names what went
            # Children first so the tombstone trigger sees each face; the cascade is a safety net.
            self.conn.execute("DELETE FROM faces WHERE subject_id = ?", (subject_id,))
            self.conn.execute("DELETE FROM custody_images WHERE subject_id = ?", (subject_id,))
            self.conn.execute("DELETE FROM subjects WHERE subject_id = ?", (subject_id,))
            audit.append(
                self.conn,
                user=self.settings.user,
                action="gallery.remove",
                details={"subject_id": subject_id, "images": int(images), "faces": int(faces)},
                removes=removed,
            )
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if vacuum:
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("removed subject %s: %d image(s), %d face(s)", subject_id, images, faces)
        return {"subject_id": subject_id, "images": int(images), "faces": int(faces), "vacuumed": vacuum}

    # -- reading -------------------------------------------------------------------------------

    def subject(self, subject_id: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM subjects WHERE subject_id = ?", (subject_id,)).fetchone()
        return dict(row) if row else None

    def images_of(self, subject_id: str) -> list[dict]:
        rows = self.conn.execute("SELECT * FROM custody_images WHERE subject_id = ? ORDER BY image_id", (subject_id,))
        return [dict(r) for r in rows]

    def face_rows(self, face_ids) -> dict[int, tuple[str, int]]:
        """face id -> (subject id, image id) for the ids still stored (removed ids are absent)."""
        ids = [int(i) for i in face_ids]
        found = {}
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit is 999 on old builds
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT face_id, subject_id, image_id FROM faces WHERE face_id IN ({marks})", chunk):
                found[int(r[0])] = (r[1], int(r[2]))
        return found

    def subject_faces(self, subject_ids) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Every stored face of these subjects: (subject ids, face ids, image ids, (N, D) embeddings)."""
        subjects, face_ids, image_ids, blobs = [], [], [], []
        ids = list(subject_ids)
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT subject_id, face_id, image_id, embedding FROM faces WHERE subject_id IN ({marks}) ORDER BY face_id"
            for r in self.conn.execute(sql, chunk):
                subjects.append(r[0])
                face_ids.append(int(r[1]))
                image_ids.append(int(r[2]))
                blobs.append(r[3])
        return subjects, np.asarray(face_ids, np.int64), np.asarray(image_ids, np.int64), blobs_to_matrix(blobs)

    def counts(self) -> dict:
        one = lambda sql: int(self.conn.execute(sql).fetchone()[0])
        return {
            "subjects": one("SELECT COUNT(*) FROM subjects"),
            "images": one("SELECT COUNT(*) FROM custody_images"),
            "faces": one("SELECT COUNT(*) FROM faces"),
            "images_with_several_faces": one("SELECT COUNT(*) FROM custody_images WHERE faces_found > 1"),
        }

    # -- the live view that search uses --------------------------------------------------------

    def live(self) -> LiveView:
        """The current :class:`LiveView`, refreshed only when the store or the index changed.

        Cheap when nothing changed: two indexed lookups and a read of the small manifest. All
        reads happen in one read transaction, so a removal or enrolment committed meanwhile by
        another process is seen entirely or not at all.
        """
        if self.conn.in_transaction:
            return self._live_snapshot()
        self.conn.execute("BEGIN")
        try:
            return self._live_snapshot()
        finally:
            self.conn.execute("COMMIT")

    def _live_snapshot(self) -> LiveView:
        max_face, max_tomb = self.conn.execute(
            "SELECT (SELECT COALESCE(MAX(face_id), 0) FROM faces), (SELECT COALESCE(MAX(seq), 0) FROM gallery_removed_faces)"
        ).fetchone()
        index_problem = None
        try:
            manifest = read_manifest(self.settings.index_dir)
        except GalleryError as exc:
            manifest, index_problem = None, str(exc)
        build_id = manifest["build_id"] if manifest else None
        state = (int(max_face), int(max_tomb), build_id)
        old = self._live
        if old is not None and old.state == state:
            return old
        if old is not None and old.state[2] == build_id and old.state[1] == state[1]:
            self._live = self._extend(old, state)  # only new enrolments: read just those
        else:
            self._live = self._load_live(state, index_problem)
            if old is not None and old.build is not None and old.build is not self._live.build:
                old.build.close()
        return self._live

    def _load_live(self, state: tuple, index_problem: str | None) -> LiveView:
        pack = self.pack_id
        build = self._live.build if self._live is not None and self._live.build is not None and self._live.state[2] == state[2] else None
        if build is None and state[2] is not None:
            try:
                build = load_build(self.settings.index_dir)
            except GalleryError as exc:
                build, index_problem = None, str(exc)
        hidden = None
        if build is not None:
            tombstones = np.asarray([r[0] for r in self.conn.execute("SELECT face_id FROM gallery_removed_faces")], np.int64)
            rows, found = build.rows_of(tombstones)
            hidden = np.zeros(build.count, bool)
            hidden[rows[found]] = True
            problem = self._build_mismatch(build, pack, hidden)
            if problem:
                index_problem = problem if pack is not None else None
                build.close()
                build, hidden = None, None
        after = build.max_face_id if build is not None else 0
        pending_ids, pending = self._faces_after(after)
        count = (build.count - int(hidden.sum()) if build is not None else 0) + len(pending_ids)
        return LiveView(pack, build, hidden, pending_ids, pending, count, index_problem, state)

    def _build_mismatch(self, build, pack: PackId | None, hidden: np.ndarray) -> str | None:
        """Why ``build`` does not describe this store (other pack, restored database...), or None.

        Face ids are only meaningful for the store the build was read from: if the database was
        replaced or restored, the same ids could name other people. So the build must be of the
        gallery's pack, hold exactly the stored faces up to its largest id (less removals), and
        its embeddings must equal the stored ones on a sample of rows.
        """
        rebuild = "; run `workbench gallery rebuild`"
        if pack is None or build.pack_id != str(pack):
            return f"index {build.build_id} was built with pack {build.pack_id}, the gallery holds {pack}{rebuild}"
        stored = self.conn.execute("SELECT COUNT(*) FROM faces WHERE face_id <= ?", (build.max_face_id,)).fetchone()[0]
        if stored != build.count - int(hidden.sum()):
            return (
                f"index {build.build_id} holds {build.count - int(hidden.sum())} live faces, the store {stored} up to the same id{rebuild}"
            )
        sample = np.unique(np.linspace(0, build.count - 1, num=min(build.count, 16)).astype(np.int64)) if build.count else []
        for row in sample:
            if hidden[row]:
                continue
            got = self.conn.execute("SELECT embedding FROM faces WHERE face_id = ?", (int(build.face_ids[row]),)).fetchone()
            if got is None or got[0] != embedding_blob(build.embeddings[row]):
                return f"index {build.build_id} does not match the stored faces (was the database replaced or restored?){rebuild}"
        return None

    def _extend(self, old: LiveView, state: tuple) -> LiveView:
        last = int(old.pending_ids[-1]) if len(old.pending_ids) else (old.build.max_face_id if old.build else 0)
        new_ids, new = self._faces_after(last)
        pending_ids = np.concatenate([old.pending_ids, new_ids])
        pending = np.concatenate([old.pending.reshape(len(old.pending_ids), -1), new]) if len(old.pending_ids) else new
        pack = old.pack_id or self.pack_id
        return LiveView(pack, old.build, old.hidden, pending_ids, pending, old.count + len(new_ids), old.index_problem, state)

    def _faces_after(self, face_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, (M, D) embeddings) of the faces with an id above ``face_id``, ascending."""
        ids, blobs = [], []
        cursor = self.conn.execute("SELECT face_id, embedding FROM faces WHERE face_id > ? ORDER BY face_id", (int(face_id),))
        while rows := cursor.fetchmany(FETCH_ROWS):
            ids.extend(r[0] for r in rows)
            blobs.extend(r[1] for r in rows)
        return np.asarray(ids, np.int64), blobs_to_matrix(blobs)

    def uses_index(self, live: LiveView | None = None) -> bool:
        """Whether a search now would let Annoy propose (else it is exact)."""
        live = live or self.live()
        below = self.settings.exact_search_below
        return self.settings.search_shards == 0 and live.build is not None and below is not None and live.count >= below

    def search_method(self, live: LiveView | None = None) -> str:
        """How a search now finds candidates: "index", "exact" or "exact on N Dask shards"."""
        if self.uses_index(live):
            return "index"
        shards = self.settings.search_shards
        return f"exact on {shards} Dask shard{'s' if shards > 1 else ''}" if shards else "exact"

    # -- index ---------------------------------------------------------------------------------

    def rebuild(self, *, n_trees: int | None = None) -> dict:
        """Build a new index from the store and swap it in; the manifest written.

        The store is read in one snapshot (a read transaction), so enrolments and removals may
        go on meanwhile: they show up as not-yet-indexed faces and tombstones of the new build.
        A crash at any point leaves the previous index in use (see :mod:`.gallery_index`).
        """
        n_trees = int(n_trees or self.settings.index_n_trees)
        if n_trees < 1:
            raise GalleryError(f"n_trees must be at least 1, got {n_trees}")
        if self.counts()["faces"] == 0:
            return self._clear_index()
        started = time.monotonic()
        with new_build(self.settings.index_dir) as writer:
            self.conn.execute("BEGIN")  # one consistent snapshot of the store for the whole read
            try:
                pack = self.pack_id
                count = int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
                removed_seq = int(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM gallery_removed_faces").fetchone()[0])
                dim = len(self.conn.execute("SELECT embedding FROM faces LIMIT 1").fetchone()[0]) // 4 if count else 0
                embeddings, face_ids = writer.allocate(count, dim)
                cursor = self.conn.execute("SELECT face_id, embedding FROM faces ORDER BY face_id")
                done = 0
                while rows := cursor.fetchmany(FETCH_ROWS):
                    face_ids[done : done + len(rows)] = [r[0] for r in rows]
                    embeddings[done : done + len(rows)] = blobs_to_matrix([r[1] for r in rows], dim)
                    done += len(rows)
            finally:
                self.conn.execute("COMMIT")
            writer.build(n_trees=n_trees)
            manifest = writer.commit(
                {
                    "pack_id": str(pack) if pack else None,
                    "n_trees": n_trees,
                    "search_k": self.settings.index_search_k,
                    "removed_seq": removed_seq,
                }
            )
        with audit.transaction(self.conn):
            # Tombstones older than the snapshot name faces the new build no longer holds.
            self.conn.execute("DELETE FROM gallery_removed_faces WHERE seq <= ?", (removed_seq,))
            audit.append(
                self.conn,
                user=self.settings.user,
                action="gallery.rebuild",
                details={
                    "build_id": manifest["build_id"],
                    "count": manifest["count"],
                    "n_trees": n_trees,
                    "ann_sha256": manifest["files"]["faces.ann"]["sha256"],
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
        log.info("index build %s: %s faces, %s trees", manifest.get("build_id"), manifest.get("count"), manifest.get("n_trees"))
        return manifest

    def _clear_index(self) -> dict:
        """An empty gallery has no index: delete it (it may hold embeddings of removed subjects)."""
        clear_index(self.settings.index_dir)
        with audit.transaction(self.conn):
            self.conn.execute("DELETE FROM gallery_removed_faces")
            audit.append(self.conn, user=self.settings.user, action="gallery.rebuild", details={"build_id": None, "count": 0})
        return {
            "build_id": None,
            "count": 0,
            "n_trees": 0,
            "pack_id": None,
            "files": {},
            "built_utc": utc_now(),
            "build_seconds": 0.0,
            "dim": 0,
        }

    def verify_index(self) -> list[str]:
        """Recompute the checksums of the index in use; the problems found (empty = intact)."""
        return verify_build(self.settings.index_dir)

    # -- stats ---------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Subjects, images, faces, pack, index age and size, records not yet indexed."""
        live = self.live()
        counts = self.counts()
        index = None
        if live.build is not None:
            m = live.build.manifest
            built = datetime.fromisoformat(m["built_utc"])
            index = {
                "build_id": m["build_id"],
                "built_utc": m["built_utc"],
                "age_s": round((datetime.now(UTC) - built).total_seconds(), 1),
                "count": m["count"],
                "n_trees": m["n_trees"],
                "bytes": sum(f["bytes"] for f in m["files"].values()),
            }
        return {
            **counts,
            "pack_id": str(live.pack_id) if live.pack_id else None,
            "index": index,
            "index_problem": live.index_problem,
            "not_indexed": int(len(live.pending_ids)),
            "removed_since_build": live.hidden_count,
            "search_method": self.search_method(live),
            "exact_search_below": self.settings.exact_search_below,
        }
