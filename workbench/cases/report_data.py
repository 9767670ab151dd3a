"""Gather a case from the workspace into a :class:`~workbench.cases.report.ReportData`, and export it.

The case store holds what was searched and decided; the gallery holds the custody images the
candidates point to (thumbnails are cut from them at export time: a custody record deleted
since shows as "no image"); the audit log holds the case's trail and is verified on the way.
Exporting a report is itself audited, with the sha256 of the file written.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np

from .. import audit
from ..types import CaseStatus, Decision, ReviewStatus, Stage
from .store import CaseStore, png_bytes, utc_now
from ..config import Settings
from ..db import transaction
from ..errors import WorkbenchError
from ..images import load_image
from .report import (
    CandidateEntry,
    DecisionEntry,
    ProbeEntry,
    ReportData,
    SearchEntry,
    write_report,
)

THUMBNAIL_PX = 160


def custody_crop(conn: sqlite3.Connection, face_id: int | None, *, size: int = THUMBNAIL_PX) -> np.ndarray | None:
    """The custody face (its box plus a margin, at most ``size`` px on the long side) as RGB, or
    None when the record or its image file is gone (the report then says "no image")."""
    if face_id is None:
        return None
    row = conn.execute(
        "SELECT i.path, f.x1, f.y1, f.x2, f.y2 FROM faces f JOIN custody_images i ON i.image_id = f.image_id WHERE f.face_id = ?", (int(face_id),)
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


def _decision_status(decision: Decision, superseded: set[int], review_of: dict) -> str:
    if decision.decision_id in superseded:
        return "superseded"
    item = review_of.get((decision.search_id, decision.probe_id, decision.subject_id))
    if item is None:
        return ReviewStatus.PENDING.value
    if decision.stage is Stage.SECOND and (item.second is None or item.second.decision_id != decision.decision_id):
        return "superseded"  # it reviewed a first decision that was later replaced
    return item.status.value


def report_data(settings: Settings, reference: str, *, store: CaseStore | None = None) -> ReportData:
    """Everything the case report shows, read from the workspace as it stands now."""
    store = store or CaseStore.open(settings)
    conn = store.conn
    case = store.case(reference)
    runs = store.searches(reference)
    decisions = store.decisions(case_ref=reference)
    by_id = {d.decision_id: d for d in decisions}
    superseded = {d.supersedes for d in decisions if d.supersedes is not None}
    review_of, rank_of = {}, {}
    for run in runs:
        for item in store.review(run.search_id):
            review_of[(item.search_id, item.probe_id, item.subject_id)] = item
            rank_of[(item.search_id, item.probe_id, item.subject_id)] = item.rank

    searches = []
    for run in runs:
        probes = tuple(
            ProbeEntry(
                probe_id=p.probe_id, source_path=p.source, source_sha256=p.source_sha256, frame_index=p.frame_index,
                timestamp_s=p.timestamp_s, start_s=p.start_s, end_s=p.end_s, bbox_xyxy=tuple(p.bbox_xyxy) if p.bbox_xyxy else None,
                quality=p.quality, crop_png=p.crop_png,
            )
            for p in run.probes
        )
        candidates = tuple(
            CandidateEntry(
                rank=c.rank, subject_id=c.subject_id, score=c.score, image_id=c.image_id, above_threshold=c.above_threshold,
                thumbnail_png=custody_thumbnail(conn, c.face_id), probe_id=c.probe_id,
            )
            for c in run.candidates
        )
        searches.append(SearchEntry(
            search_id=str(run.search_id), time_utc=run.time_utc, user=run.user, pack_id=str(run.pack_id),
            gallery_version=json.dumps(run.gallery_version, sort_keys=True), top=run.top, threshold=run.threshold, mode=run.mode.value,
            probes=probes, candidates=candidates,
        ))

    entries = []
    for d in decisions:
        reviewed = by_id.get(d.reviews) if d.reviews else None
        verdict = d.verdict.value if d.verdict else (reviewed.verdict.value if reviewed and reviewed.verdict else "inconclusive")
        entries.append(DecisionEntry(
            decision_id=d.decision_id, search_id=str(d.search_id), subject_id=d.subject_id,
            rank=rank_of.get((d.search_id, d.probe_id, d.subject_id), 0), stage=d.stage.value, reviewer=d.reviewer, verdict=verdict,
            agreement=d.agreement.value if d.agreement else None, reason=d.reason, time_utc=d.time_utc, supersedes=d.supersedes,
            status=_decision_status(d, superseded, review_of),
        ))

    check = audit.verify(conn)
    trail = audit.entries(conn, case_ref=reference)
    note = (
        f"the workspace audit chain verified: {check.entries} entries, last hash {audit.entries(conn)[-1].hash if check.entries else '-'}"
        if check.ok else f"AUDIT CHAIN BROKEN at entry {check.first_bad_seq}: {check.problem}"
    )
    return ReportData(
        reference=case.reference, offence=case.offence, purpose=case.purpose, officer=case.officer, status=case.status.value,
        created_utc=case.created_utc, closed_utc=case.updated_utc if case.status != CaseStatus.OPEN else None,
        generated_utc=utc_now(), generated_by=store.user, searches=tuple(searches), decisions=tuple(entries),
        audit=tuple(e.as_dict() for e in trail), audit_ok=check.ok, audit_note=note,
    )


def export_report(settings: Settings, reference: str, out: str | Path, *, store: CaseStore | None = None) -> dict:
    """Write the case report (PDF or HTML by suffix) and record the export in the audit log."""
    store = store or CaseStore.open(settings)
    data = report_data(settings, reference, store=store)
    path = write_report(data, Path(out))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with transaction(store.conn):
        audit.append(store.conn, user=store.user, action="report.export", case_ref=reference,
                     details={"out": str(path), "format": path.suffix.lower().lstrip("."), "sha256": digest,
                              "searches": len(data.searches), "decisions": len(data.decisions)})
    return {"out": str(path), "sha256": digest, "searches": len(data.searches), "decisions": len(data.decisions), "audit_ok": data.audit_ok}



