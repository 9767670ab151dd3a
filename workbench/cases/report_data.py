"""Gather a case from the workspace into a :class:`~workbench.cases.report.ReportData`, and export it.

The case store holds what was searched and decided; the gallery holds the custody images the
candidates point to (thumbnails are cut from them at export time: the report says so when a
custody record was removed since the search, or its image file cannot be read); the audit log
holds the case's trail and is verified on the way.
Exporting a report is itself audited, with the sha256 of the file written.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import cv2
import numpy as np

from .. import audit
from ..config import Settings
from ..errors import WorkbenchError
from ..images import load_image
from .report import ReportData, write_report
from .store import CaseStore, png_bytes, utc_now

THUMBNAIL_PX = 160


def custody_crop(conn: sqlite3.Connection, face_id: int | None, *, size: int = THUMBNAIL_PX) -> np.ndarray | None:
    """The custody face (its box plus a margin, at most ``size`` px on the long side) as RGB, or
    None when the record or its image file is gone (the report then says "no image")."""
    if face_id is None:
        return None
    row = conn.execute(
        "SELECT i.path, f.x1, f.y1, f.x2, f.y2 FROM faces f JOIN custody_images i ON i.image_id = f.image_id WHERE f.face_id = ?",
        (int(face_id),),
    ).fetchone()
    if row is None:
        return None  # the custody record was deleted after the search
    try:
        rgb = load_image(row["path"])
    except WorkbenchError:
        return None  # the image file moved or was deleted
    x1, y1, x2, y2 = row["x1"], row["y1"], row["x2"], row["y2"]
    margin = 0.3 * max(x2 - x1, y2 - y1)
    top, left = int(max(0, y1 - margin)), int(max(0, x1 - margin))
    crop = rgb[top : int(min(rgb.shape[0], y2 + margin)), left : int(min(rgb.shape[1], x2 + margin))]
    if crop.size == 0:
        return None
    scale = min(1.0, size / max(crop.shape[:2]))
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def custody_thumbnail(conn: sqlite3.Connection, face_id: int | None, *, size: int = THUMBNAIL_PX) -> bytes | None:
    """PNG of :func:`custody_crop`, or None if gone."""
    crop = custody_crop(conn, face_id, size=size)
    return None if crop is None else png_bytes(crop)


def custody_thumbnails(conn: sqlite3.Connection, face_ids, *, size: int = THUMBNAIL_PX) -> dict[int, bytes | None]:
    """PNG thumbnails (:func:`custody_thumbnail`) keyed by face id, for the faces whose custody
    record still exists; None when the record exists but its image file cannot be read. Faces
    whose record was removed since the search get no entry, so the report can say which of the
    two happened rather than one "no image" for both."""
    wanted = sorted({int(f) for f in face_ids if f is not None})
    return {face_id: custody_thumbnail(conn, face_id, size=size) for face_id in wanted if _custody_record_exists(conn, face_id)}


def _custody_record_exists(conn: sqlite3.Connection, face_id: int) -> bool:
    return conn.execute("SELECT 1 FROM faces WHERE face_id = ?", (face_id,)).fetchone() is not None


def _audit_note(conn: sqlite3.Connection, check: audit.VerifyResult) -> str:
    """What the audit check found, in words: entries, rows and the checkpoint it was checked
    against, or plainly what failed (every problem, then the checkpoint, then warnings)."""
    warnings = "".join(f" WARNING: {w}." for w in check.warnings)
    if not check.ok:
        where = f" (first bad entry {check.first_bad_seq})" if check.first_bad_seq is not None else ""
        failed = "; ".join(check.problems) or check.problem or "the head of the log was not checked"
        return f"NOT VERIFIED{where}: {failed}. Checked against {check.checkpoint_text}.{warnings}"
    if not check.entries:
        return f"The workspace audit log is empty.{warnings}"
    return (
        f"The workspace audit log holds {check.entries} entries (last hash {check.last_hash}); "
        f"{check.rows_checked} recorded rows (cases, searches, probes, candidate lists, decisions, custody records) "
        f"match their entries; checked against {check.checkpoint_text}.{warnings}"
    )


def report_data(settings: Settings, reference: str, *, store: CaseStore | None = None) -> ReportData:
    """Everything the case report shows, read from the workspace as it stands now.

    Raises:
        CaseError: no such case.
    """
    store = store or CaseStore.open(settings)
    conn = store.conn
    case = store.case(reference)
    runs = tuple(store.searches(reference))
    check = audit.verify(conn)
    return ReportData(
        case=case,
        searches=runs,
        decisions=tuple(store.decisions(case_ref=reference)),
        reviews=tuple(item for run in runs for item in store.review(run.search_id)),
        thumbnails=custody_thumbnails(conn, (c.face_id for run in runs for c in run.candidates)),
        audit=tuple(audit.entries(conn, case_ref=reference)),
        audit_ok=check.ok,
        audit_note=_audit_note(conn, check),
        generated_utc=utc_now(),
        generated_by=store.user,
    )


def export_report(settings: Settings, reference: str, out: str | Path, *, store: CaseStore | None = None) -> dict:
    """Write the case report (PDF or HTML by suffix) and record the export in the audit log."""
    store = store or CaseStore.open(settings)
    data = report_data(settings, reference, store=store)
    path = write_report(data, Path(out))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with audit.transaction(store.conn):
        audit.append(store.conn, user=store.user, action="report.export", case_ref=reference,
                     details={"out": str(path), "format": path.suffix.lower().lstrip("."), "sha256": digest,
                              "searches": len(data.searches), "decisions": len(data.decisions)})
    return {"out": str(path), "sha256": digest, "searches": len(data.searches), "decisions": len(data.decisions), "audit_ok": data.audit_ok}
