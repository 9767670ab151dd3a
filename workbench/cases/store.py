"""Cases, recorded searches and two-person review.

Retrospective searches are intelligence, not evidence: a candidate is a lead for trained people.
The force must be able to show later what was searched, why, by whom, with what settings, what
came back and what people decided. So:

* every search runs inside an **open case** (reference, offence, stated purpose, officer in
  charge) and is recorded with its probes (source file sha256, frame, time, box, the crop shown,
  the embeddings that were searched), pack, gallery version, top, threshold, mode and the
  candidate lists exactly as shown;
* for each candidate a **first reviewer** records a verdict (possible match, no match,
  inconclusive) with a reason; a **second reviewer**, a different user, confirms or disagrees
  with a reason of their own. A change is a new decision that supersedes the old one; recorded
  searches and decisions are never edited (the database refuses it);
* every change writes an audit entry in the same transaction (:mod:`workbench.audit`).

A candidate is *pending* until the current first decision has a current second decision, then
*agreed* (confirmed) or *disputed* (disagreed). Superseding a first decision makes the candidate
pending again: the second reviewer must look at the new verdict.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import audit
from ..db import connect, utc_now
from ..errors import CaseError, ReviewError
from ..fileio import sha256_file
from ..types import (
    Agreement,
    Candidate,
    CandidateList,
    CandidateReview,
    Case,
    CaseStatus,
    Decision,
    Face,
    PackId,
    Probe,
    ReviewStatus,
    SearchMode,
    SearchRun,
    Stage,
    Verdict,
)

# ---------------------------------------------------------------------------------------------
# The store


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 RGB array as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


class CaseStore:
    """Cases, searches and decisions in the workspace database, acting as one user.

    Args:
        conn: the workspace database (see :func:`workbench.db.connect`).
        user: the person acting; recorded on every change and in the audit log.
    """

    def __init__(self, conn: sqlite3.Connection, user: str):
        if not user or not user.strip():
            raise CaseError("a user name is required to work on cases (--user or WORKBENCH_USER)")
        self.conn = conn
        self.user = user.strip()

    @classmethod
    def open(cls, settings) -> CaseStore:
        return cls(connect(settings.db_path), settings.user)

    # -- cases ----------------------------------------------------------------------------------

    def new_case(self, reference: str, *, offence: str, purpose: str, officer: str | None = None) -> Case:
        """Open a case. The purpose says why searching is necessary; it is required.

        Raises:
            CaseError: empty fields, or the reference exists already.
        """
        reference = (reference or "").strip()
        fields = {"reference": reference, "offence": (offence or "").strip(), "purpose": (purpose or "").strip()}
        missing = [name for name, value in fields.items() if not value]
        if missing:
            raise CaseError(f"a case needs a {', '.join(missing)} (searches must state what they are for)")
        officer = (officer or self.user).strip()
        now = utc_now()
        try:
            with audit.transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO cases (reference, offence, purpose, officer, status, "
                    "created_utc, created_by, updated_utc) VALUES (?, ?, ?, ?, 'open', ?, ?, ?)",
                    (reference, fields["offence"], fields["purpose"], officer, now, self.user, now),
                )
                audit.append(
                    self.conn,
                    user=self.user,
                    action="case.new",
                    case_ref=reference,
                    details={"offence": fields["offence"], "purpose": fields["purpose"], "officer": officer},
                    covers={"case": [reference]},
                )
        except sqlite3.IntegrityError as exc:
            raise CaseError(f"case {reference!r} already exists") from exc
        return self.case(reference)

    def case(self, reference: str) -> Case:
        row = self.conn.execute("SELECT * FROM cases WHERE reference = ?", (reference,)).fetchone()
        if row is None:
            raise CaseError(f"no case {reference!r}; create it with `workbench case new {reference} --offence ... --purpose ...`")
        return _case(row)

    def cases(self, status: CaseStatus | str | None = None) -> list[Case]:
        if status is None:
            rows = self.conn.execute("SELECT * FROM cases ORDER BY created_utc, reference").fetchall()
        else:
            value = status.value if isinstance(status, CaseStatus) else CaseStatus(status).value
            rows = self.conn.execute("SELECT * FROM cases WHERE status = ? ORDER BY created_utc, reference", (value,)).fetchall()
        return [_case(r) for r in rows]

    def set_status(self, reference: str, status: CaseStatus, *, reason: str = "") -> Case:
        """Close, archive or reopen a case (an archived case stays archived)."""
        case = self.case(reference)
        if case.status == status:
            return case
        if case.status == CaseStatus.ARCHIVED:
            raise CaseError(f"case {reference!r} is archived and cannot change status")
        with audit.transaction(self.conn):
            self.conn.execute("UPDATE cases SET status = ?, updated_utc = ? WHERE reference = ?", (status.value, utc_now(), reference))
            audit.append(
                self.conn,
                user=self.user,
                action=f"case.{status.value}",
                case_ref=reference,
                details={"from": case.status.value, "to": status.value, "reason": reason},
                covers={"case": [reference]},
            )
        return self.case(reference)

    def purge_biometrics(self, reference: str, *, reason: str) -> dict:
        """Delete the probe crops and embeddings of an archived case's searches (retention).

        What stays: the case, every search's settings, probes' evidence (source sha256, frame,
        time, box, quality), the candidate lists, the decisions and the audit trail, in which the
        sha256 of every exported report is kept. Audited; the rows are covered again by the entry.

        Raises:
            CaseError: the case is not archived.
        """
        case = self.case(reference)
        if case.status is not CaseStatus.ARCHIVED:
            raise CaseError(f"case {reference!r} is {case.status.value}: only archived cases are purged")
        ids = [r[0] for r in self.conn.execute("SELECT search_id FROM searches WHERE case_ref = ? ORDER BY search_id", (reference,))]
        reports = [
            {"sha256": e.details.get("sha256"), "out": e.details.get("out"), "time_utc": e.time_utc}
            for e in audit.entries(self.conn, case_ref=reference)
            if e.action == "report.export"
        ]
        with audit.transaction(self.conn):
            purged = (
                self.conn.execute(
                    f"UPDATE search_probes SET crop_png = NULL, embeddings = X'' WHERE search_id IN ({','.join('?' * len(ids))}) "
                    "AND length(embeddings) > 0",
                    ids,
                ).rowcount
                if ids
                else 0
            )
            audit.append(
                self.conn,
                user=self.user,
                action="retention.purge",
                case_ref=reference,
                details={"reason": reason, "searches": ids, "probes_purged": purged, "reports_kept": reports},
                covers={"probes": ids},
            )
        return {"case": reference, "searches": len(ids), "probes_purged": purged, "reports_kept": len(reports)}

    def require_open(self, reference: str | None) -> Case:
        """The case a search will be recorded in.

        Raises:
            CaseError: no reference given (searches run only inside a case), unknown, or not open.
        """
        if not reference:
            raise CaseError(
                "a search must run inside an open case: create one with `workbench case new REF --offence ... "
                "--purpose ...` and pass --case REF"
            )
        case = self.case(reference)
        if case.status != CaseStatus.OPEN:
            raise CaseError(f"case {reference!r} is {case.status.value}: it accepts no new searches")
        return case

    # -- searches -------------------------------------------------------------------------------

    def record_search(
        self,
        case_ref: str,
        results: Sequence[tuple[Probe, CandidateList]],
        *,
        top: int,
        gallery_version: dict,
        replay_of: int | None = None,
        threshold_version: int | None = None,
        calibration_id: int | None = None,
        notes: Sequence[str] = (),
        warnings: Sequence[str] = (),
    ) -> SearchRun:
        """Record a search exactly as shown, with its audit entry, in one transaction.

        Args:
            results: (probe, candidate list) pairs in the order shown (best probe first). Each
                probe carries its evidence (source sha256, frame, time, box, crop, manual); a
                missing hash is computed from the source file, a missing crop falls back to the
                best face's aligned crop.
            top: the list length asked for.
            gallery_version: what was searched (index build and checksum, live counts).
            threshold_version, calibration_id: the pack's operating threshold version in force
                and the score calibration behind each candidate's ``fmr_at_score`` (or None).
            notes, warnings: what the search said about its threshold, as shown.
        """
        self.require_open(case_ref)
        if not results:
            raise CaseError("nothing to record: the search had no probe faces")
        ids = [probe.probe_id for probe, _ in results]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise CaseError(f"probe ids must be unique within a search; repeated: {', '.join(repeated)}")
        first = results[0][1]
        now = utc_now()
        with audit.transaction(self.conn):
            cursor = self.conn.execute(
                "INSERT INTO searches (case_ref, time_utc, user, pack_id, gallery_version, top, "
                "threshold, mode, method, replay_of, threshold_version, calibration_id, notes_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    case_ref,
                    now,
                    self.user,
                    str(first.pack_id),
                    json.dumps(gallery_version, sort_keys=True),
                    int(top),
                    first.threshold,
                    first.mode.value,
                    first.method,
                    replay_of,
                    threshold_version,
                    calibration_id,
                    json.dumps({"notes": list(notes), "warnings": list(warnings)}) if notes or warnings else None,
                ),
            )
            search_id = int(cursor.lastrowid)
            summary = []
            for position, (probe, found) in enumerate(results):
                info = self._probe_row(probe)
                self.conn.execute(
                    "INSERT INTO search_probes (search_id, probe_id, position, source_path, source_sha256, frame_index, "
                    "timestamp_s, start_s, end_s, bbox_json, quality, n_faces, crop_png, embedding_dim, embeddings, manual) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        search_id,
                        probe.probe_id,
                        position,
                        probe.source,
                        info["sha256"],
                        probe.frame_index,
                        probe.timestamp_s,
                        probe.start_s,
                        probe.end_s,
                        json.dumps(info["bbox"]) if info["bbox"] else None,
                        probe.quality,
                        probe.n_faces,
                        info["crop_png"],
                        info["dim"],
                        info["embeddings"],
                        int(probe.manual),
                    ),
                )
                self.conn.executemany(
                    "INSERT INTO search_candidates (search_id, probe_id, rank, subject_id, score, "
                    "image_id, face_id, above_threshold, per_probe_json, fmr_at_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            search_id,
                            probe.probe_id,
                            c.rank,
                            c.subject_id,
                            float(c.score),
                            c.image_id,
                            c.face_id,
                            None if c.above_threshold is None else int(c.above_threshold),
                            json.dumps([round(float(s), 6) for s in c.per_probe_scores]),
                            None if c.fmr_at_score is None else float(c.fmr_at_score),
                        )
                        for c in found
                    ],
                )
                summary.append(
                    {
                        "probe_id": probe.probe_id,
                        "source_sha256": info["sha256"],
                        "frame_index": probe.frame_index,
                        "timestamp_s": probe.timestamp_s,
                        "start_s": probe.start_s,
                        "end_s": probe.end_s,
                        "faces": probe.n_faces,
                        "manual": probe.manual,
                        "candidates": [[c.subject_id, round(float(c.score), 4)] for c in found],
                    }
                )
            audit.append(
                self.conn,
                user=self.user,
                action="search.replay" if replay_of else "search.run",
                case_ref=case_ref,
                details={
                    "search_id": search_id,
                    "replay_of": replay_of,
                    "pack_id": str(first.pack_id),
                    "gallery_version": gallery_version,
                    "top": int(top),
                    "threshold": first.threshold,
                    "threshold_version": threshold_version,
                    "calibration_id": calibration_id,
                    "warnings": list(warnings),
                    "mode": first.mode.value,
                    "method": first.method,
                    "probes": summary,
                },
                covers={"search": [search_id], "probes": [search_id], "candidates": [search_id]},
            )
        return self.search(search_id)

    @staticmethod
    def _probe_row(probe: Probe) -> dict:
        best = max(probe.faces, key=lambda f: f.quality.score if f.quality else 0.0)
        sha = probe.source_sha256
        if not sha:
            path = Path(probe.source)
            sha = sha256_file(path) if path.is_file() else ""
        crop_png = probe.crop_png
        if crop_png is None and best.aligned is not None:
            crop_png = png_bytes(best.aligned)
        embeddings = np.stack([f.embedding for f in probe.faces]).astype("<f4")
        return {
            "sha256": sha,
            "bbox": [round(float(v), 1) for v in (probe.bbox_xyxy or best.bbox_xyxy)],
            "crop_png": crop_png,
            "dim": embeddings.shape[1],
            "embeddings": embeddings.tobytes(),
        }

    def search(self, search_id: int) -> SearchRun:
        """A recorded search with its probes (evidence and the embeddings searched) and lists."""
        row = self.conn.execute("SELECT * FROM searches WHERE search_id = ?", (int(search_id),)).fetchone()
        if row is None:
            raise CaseError(f"no recorded search {search_id}")
        pack_id = PackId.parse(row["pack_id"])
        probes = [
            _probe(p, pack_id)
            for p in self.conn.execute("SELECT * FROM search_probes WHERE search_id = ? ORDER BY position", (row["search_id"],))
        ]
        order = {p.probe_id: i for i, p in enumerate(probes)}
        candidates = sorted(
            (_candidate(c) for c in self.conn.execute("SELECT * FROM search_candidates WHERE search_id = ?", (row["search_id"],))),
            key=lambda c: (order.get(c.probe_id, 0), c.rank),
        )
        return SearchRun(
            row["search_id"],
            row["case_ref"],
            row["time_utc"],
            row["user"],
            pack_id,
            json.loads(row["gallery_version"]),
            row["top"],
            row["threshold"],
            SearchMode.parse(row["mode"]),
            row["method"],
            row["replay_of"],
            tuple(probes),
            tuple(candidates),
            **self._threshold_fields(row),
        )

    def _threshold_fields(self, row) -> dict:
        """The threshold version, calibration summary, notes and warnings a search recorded
        (searches recorded before these existed have none)."""
        from ..thresholds import calibration_summary

        keys = row.keys()
        notes = json.loads(row["notes_json"]) if "notes_json" in keys and row["notes_json"] else {}
        calibration = None
        if "calibration_id" in keys and row["calibration_id"] is not None:
            found = calibration_summary(self.conn, row["calibration_id"])
            calibration = found or {"calibration_id": row["calibration_id"], "missing": True}
        return {
            "threshold_version": row["threshold_version"] if "threshold_version" in keys else None,
            "calibration": calibration,
            "notes": tuple(notes.get("notes", ())),
            "warnings": tuple(notes.get("warnings", ())),
        }

    def search_ids(self, case_ref: str) -> list[int]:
        """The ids of a case's recorded searches, oldest first (CaseError for an unknown case)."""
        self.case(case_ref)
        return [r[0] for r in self.conn.execute("SELECT search_id FROM searches WHERE case_ref = ? ORDER BY search_id", (case_ref,))]

    def searches(self, case_ref: str) -> list[SearchRun]:
        return [self.search(i) for i in self.search_ids(case_ref)]

    def probe_embeddings(self, search_id: int) -> dict[str, np.ndarray]:
        """The embeddings each probe was searched with: probe id -> (n_faces, D) float32."""
        rows = self.conn.execute(
            "SELECT probe_id, embedding_dim, embeddings FROM search_probes WHERE search_id = ? ORDER BY position", (int(search_id),)
        )
        return {r["probe_id"]: np.frombuffer(r["embeddings"], "<f4").reshape(-1, r["embedding_dim"]).copy() for r in rows}

    # -- review ---------------------------------------------------------------------------------

    def _find_candidate(self, run: SearchRun, subject_id: str, probe_id: str | None) -> Candidate:
        search_id = run.search_id
        matches = [c for c in run.candidates if c.subject_id == subject_id and (probe_id is None or c.probe_id == probe_id)]
        if not matches:
            where = f" for probe {probe_id!r}" if probe_id else ""
            raise ReviewError(f"subject {subject_id!r} is not a candidate of search {search_id}{where}")
        if len(matches) > 1:
            probes = ", ".join(sorted(c.probe_id for c in matches))
            raise ReviewError(
                f"subject {subject_id!r} is a candidate of several probes of search {search_id} ({probes}); say which with --probe"
            )
        return matches[0]

    def _current(self, search_id: int, probe_id: str, subject_id: str, stage: Stage) -> Decision | None:
        """The latest decision of a stage that no later decision supersedes."""
        rows = self.conn.execute(
            "SELECT * FROM decisions d WHERE search_id = ? AND probe_id = ? AND subject_id = ? AND stage = ? "
            "AND NOT EXISTS (SELECT 1 FROM decisions s WHERE s.supersedes = d.decision_id) ORDER BY decision_id DESC LIMIT 1",
            (int(search_id), probe_id, subject_id, stage.value),
        ).fetchone()
        return _decision(rows) if rows else None

    def record_first(
        self, search_id: int, subject_id: str, verdict: Verdict | str, reason: str, *, probe_id: str | None = None
    ) -> Decision:
        """The first reviewer's verdict on a candidate; replaces (supersedes) an earlier one."""
        verdict = Verdict.parse(verdict)
        run = self.search(search_id)
        candidate = self._find_candidate(run, subject_id, probe_id)
        self._require_reviewable(run)
        previous = self._current(search_id, candidate.probe_id, subject_id, Stage.FIRST)
        return self._insert_decision(
            run,
            candidate,
            Stage.FIRST,
            verdict=verdict,
            agreement=None,
            reason=reason,
            supersedes=previous.decision_id if previous else None,
            reviews=None,
        )

    def record_second(
        self, search_id: int, subject_id: str, agreement: Agreement | str, reason: str, *, probe_id: str | None = None
    ) -> Decision:
        """The second reviewer confirms or disagrees with the current first decision.

        Raises:
            ReviewError: no first decision yet, or the second reviewer is the first reviewer.
        """
        agreement = Agreement.parse(agreement)
        run = self.search(search_id)
        candidate = self._find_candidate(run, subject_id, probe_id)
        self._require_reviewable(run)
        first = self._current(search_id, candidate.probe_id, subject_id, Stage.FIRST)
        if first is None:
            raise ReviewError(f"subject {subject_id!r} in search {search_id} has no first decision to review yet")
        if first.reviewer == self.user:
            raise ReviewError(
                f"{self.user} made the first decision on {subject_id!r} in search "
                f"{search_id}; the second review must be by a different person"
            )
        previous = self._current(search_id, candidate.probe_id, subject_id, Stage.SECOND)
        return self._insert_decision(
            run,
            candidate,
            Stage.SECOND,
            verdict=None,
            agreement=agreement,
            reason=reason,
            supersedes=previous.decision_id if previous else None,
            reviews=first.decision_id,
        )

    def _require_reviewable(self, run: SearchRun) -> None:
        case = self.case(run.case_ref)
        if case.status == CaseStatus.ARCHIVED:
            raise ReviewError(f"case {run.case_ref!r} is archived: no further decisions")

    def _insert_decision(
        self, run: SearchRun, candidate: Candidate, stage: Stage, *, verdict, agreement, reason, supersedes, reviews
    ) -> Decision:
        reason = (reason or "").strip()
        if not reason:
            raise ReviewError("every decision needs a written reason")
        now = utc_now()
        with audit.transaction(self.conn):
            cursor = self.conn.execute(
                "INSERT INTO decisions (search_id, probe_id, subject_id, stage, reviewer, verdict, "
                "agreement, reason, time_utc, supersedes, reviews) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.search_id,
                    candidate.probe_id,
                    candidate.subject_id,
                    stage.value,
                    self.user,
                    verdict.value if verdict else None,
                    agreement.value if agreement else None,
                    reason,
                    now,
                    supersedes,
                    reviews,
                ),
            )
            decision_id = int(cursor.lastrowid)
            audit.append(
                self.conn,
                user=self.user,
                action=f"review.{stage.value}",
                case_ref=run.case_ref,
                details={
                    "decision_id": decision_id,
                    "search_id": run.search_id,
                    "probe_id": candidate.probe_id,
                    "subject_id": candidate.subject_id,
                    "rank": candidate.rank,
                    "verdict": verdict.value if verdict else None,
                    "agreement": agreement.value if agreement else None,
                    "reason": reason,
                    "supersedes": supersedes,
                    "reviews": reviews,
                },
                covers={"decision": [decision_id]},
            )
        return _decision(self.conn.execute("SELECT * FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone())

    def decisions(self, *, case_ref: str | None = None, search_id: int | None = None) -> list[Decision]:
        """Every decision (current and superseded) of a case or a search, oldest first."""
        if search_id is not None:
            rows = self.conn.execute("SELECT * FROM decisions WHERE search_id = ? ORDER BY decision_id", (int(search_id),))
        elif case_ref is not None:
            rows = self.conn.execute(
                "SELECT d.* FROM decisions d JOIN searches s ON s.search_id = d.search_id WHERE s.case_ref = ? ORDER BY d.decision_id",
                (case_ref,),
            )
        else:
            raise ValueError("give a case reference or a search id")
        return [_decision(r) for r in rows]

    def review(self, search_id: int) -> list[CandidateReview]:
        """Where the review of every candidate of a search stands, in the order shown."""
        reviews = []
        for c in self._candidates_shown(search_id):
            first = self._current(search_id, c.probe_id, c.subject_id, Stage.FIRST)
            second = self._current(search_id, c.probe_id, c.subject_id, Stage.SECOND)
            if second is not None and (first is None or second.reviews != first.decision_id):
                second = None  # it reviewed a first decision that has since been superseded
            if first is None or second is None:
                status = ReviewStatus.PENDING
            else:
                status = ReviewStatus.AGREED if second.agreement == Agreement.CONFIRM else ReviewStatus.DISPUTED
            reviews.append(CandidateReview(search_id, c.probe_id, c.rank, c.subject_id, c.score, first, second, status))
        return reviews

    def _candidates_shown(self, search_id: int) -> list[Candidate]:
        """A recorded search's candidates in the order shown, without loading its probes (their
        crops and embeddings): the review queues read this for every search."""
        if self.conn.execute("SELECT 1 FROM searches WHERE search_id = ?", (int(search_id),)).fetchone() is None:
            raise CaseError(f"no recorded search {search_id}")
        rows = self.conn.execute(
            "SELECT c.* FROM search_candidates c JOIN search_probes p ON p.search_id = c.search_id AND p.probe_id = c.probe_id "
            "WHERE c.search_id = ? ORDER BY p.position, c.rank",
            (int(search_id),),
        )
        return [_candidate(r) for r in rows]

    def case_review(self, case_ref: str) -> dict[str, int]:
        """Counts of agreed, disputed and pending candidates over a case's searches."""
        counts = {s.value: 0 for s in ReviewStatus}
        for search_id in self.search_ids(case_ref):
            for item in self.review(search_id):
                counts[item.status.value] += 1
        return counts


def _case(row) -> Case:
    return Case(
        row["reference"],
        row["offence"],
        row["purpose"],
        row["officer"],
        CaseStatus(row["status"]),
        row["created_utc"],
        row["created_by"],
        row["updated_utc"],
    )


def _decision(row) -> Decision:
    return Decision(
        row["decision_id"],
        row["search_id"],
        row["probe_id"],
        row["subject_id"],
        Stage(row["stage"]),
        row["reviewer"],
        Verdict(row["verdict"]) if row["verdict"] else None,
        Agreement(row["agreement"]) if row["agreement"] else None,
        row["reason"],
        row["time_utc"],
        row["supersedes"],
        row["reviews"],
    )


def _probe(row, pack_id: PackId) -> Probe:
    """A recorded probe: its evidence, and faces rebuilt from the embeddings that were searched
    (the box of the face shown; no landmarks or quality of their own)."""
    dim, data = row["embedding_dim"], row["embeddings"]
    box = tuple(json.loads(row["bbox_json"])) if row["bbox_json"] else None
    if data is not None and len(data) == 0 and row["crop_png"] is None:  # purged under the retention rule
        return Probe(
            probe_id=row["probe_id"],
            source=row["source_path"],
            faces=(),
            start_s=row["start_s"],
            end_s=row["end_s"],
            source_sha256=row["source_sha256"],
            frame_index=row["frame_index"],
            timestamp_s=row["timestamp_s"],
            bbox_xyxy=box,
            crop_png=None,
            manual=bool(row["manual"]),
            quality=row["quality"],
            purged=True,
        )
    problem = f"search {row['search_id']}: the recorded embeddings of probe {row['probe_id']!r} are damaged"
    if not data or not dim or len(data) % (4 * dim):
        raise CaseError(f"{problem} ({len(data or b'')} bytes for {dim}-value embeddings)")
    box = tuple(json.loads(row["bbox_json"])) if row["bbox_json"] else None
    try:
        faces = tuple(
            Face(
                bbox_xyxy=box or (0.0, 0.0, 0.0, 0.0),
                landmarks=np.zeros((5, 2), np.float32),
                detector_score=1.0,
                embedding=e,
                pack_id=pack_id,
            )
            for e in np.frombuffer(data, "<f4").reshape(-1, dim)
        )
    except ValueError as exc:
        raise CaseError(f"{problem} ({exc})") from exc
    return Probe(
        probe_id=row["probe_id"],
        source=row["source_path"],
        faces=faces,
        start_s=row["start_s"],
        end_s=row["end_s"],
        source_sha256=row["source_sha256"],
        frame_index=row["frame_index"],
        timestamp_s=row["timestamp_s"],
        bbox_xyxy=box,
        crop_png=row["crop_png"],
        manual=bool(row["manual"]),
        quality=row["quality"],
    )


def _candidate(row) -> Candidate:
    per_probe = tuple(json.loads(row["per_probe_json"])) if row["per_probe_json"] else (row["score"],)
    return Candidate(
        rank=row["rank"],
        subject_id=row["subject_id"],
        score=row["score"],
        image_id=row["image_id"],
        face_id=row["face_id"],
        above_threshold=None if row["above_threshold"] is None else bool(row["above_threshold"]),
        per_probe_scores=per_probe,
        probe_id=row["probe_id"],
        fmr_at_score=row["fmr_at_score"] if "fmr_at_score" in row.keys() else None,
    )
