"""Workspace: one opened workspace folder for one user, and the plain functions everyone calls.

Notebooks, dashboard widgets and the ``workbench`` command all start here, so a search run from
a notebook and one run from the command line are checked and recorded alike::

    from workbench import Workspace

    with Workspace.open("workspace", user="analyst1") as ws:
        ws.open_case("OP-7", offence="robbery", purpose="identify the suspect in CCTV")
        footage = ws.extract("cctv.mp4", progress=print)         # once; tracks with best shots
        ws.tracks_frame(footage)                                  # pandas DataFrame
        probe = ws.probe_from_track(footage, track_id=3)
        run = ws.search("OP-7", [probe])                          # recorded SearchRun
        run.to_frame()
        ws.first_verdict(run.search_id, run.candidates[0].subject_id, "possible match", "same scar")

    with Workspace.open("workspace", user="reviewer2") as ws:
        ws.second_verdict(search_id, subject_id, "confirm", "agree: ear shape")
        ws.export_report("OP-7", "reports/OP-7.pdf")

What it holds: the settings, a face engine built on first use (loading models costs about a
second), the gallery and the case store on one database connection each, and a lock so that
a dashboard's worker thread and its page never use a connection at the same time. ``close()``
(or ``with``) closes them all.

Long work takes ``progress(done, total)`` (same unit for both: frames, images, seconds of
footage) and a ``cancel`` event; cancelled footage extraction keeps what it found.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Settings
from .errors import AccessError, CaseError, FootageError, WorkbenchError
from .fileio import (
    PRIVATE_FILE,
    checked_output_dir,
    checked_output_path,
    make_private_dir,
    os_error_message,
    os_reason,
    permission_warning,
    private_umask,
)
from .types import (
    Agreement,
    Case,
    CaseStatus,
    Decision,
    Probe,
    SearchMode,
    SearchRun,
    Verdict,
)

if TYPE_CHECKING:
    import pandas as pd

    from .access import AccessControl
    from .cases.investigate import ReplayResult
    from .cases.store import CaseStore
    from .engine import FaceEngine
    from .footage import FootageResult
    from .gallery.enrol import EnrolSummary
    from .gallery.store import Gallery
    from .types import CandidateReview

log = logging.getLogger(__name__)

#: progress callback: (done, total) in one unit; total may be 0 when unknown.
Progress = Callable[[float, float], None]


def _prepare_home(home: Path) -> str | None:
    """Create the workspace folder owner-only (0700) if it does not exist; return (and log) a
    warning when an existing one is readable by other users.

    Raises:
        WorkbenchError: the path is empty, names a file, or the folder cannot be created.
    """
    if not str(home).strip():
        raise WorkbenchError("the workspace folder must not be empty: give --home DIR or set WORKBENCH_HOME")
    if os.path.lexists(home) and not home.is_dir():
        what = "a file" if home.exists() else "a broken or looping symbolic link"
        raise WorkbenchError(f"{home}: is {what}, not a workspace folder; give --home a folder (a new one makes a new workspace)")
    if not home.is_dir():
        try:
            make_private_dir(home)
        except OSError as exc:
            raise WorkbenchError(f"{home}: cannot create the workspace folder ({os_reason(exc)})") from exc
        return None
    warning = permission_warning(home)
    if warning:
        log.warning(warning)
    return warning


class Workspace:
    """One workspace folder opened for one user. Use :meth:`open`; close it (or use ``with``).

    Args:
        settings: the workspace's settings (``settings.home``, ``settings.user``...).
        engine: an already loaded :class:`~workbench.engine.FaceEngine` to share (tests, the
            demo); by default one is built on first use.
    """

    def __init__(self, settings: Settings, *, engine: FaceEngine | None = None, authenticated_as: str | None = None):
        self.settings = settings
        #: why the workspace is readable by other users (logged as a warning), or None.
        self.permission_warning = _prepare_home(settings.home)
        #: who the environment authenticated (the OS user for the CLI); None = trust settings.user.
        self.authenticated_as = authenticated_as
        self._engine = engine
        self._gallery: Gallery | None = None
        self._cases: CaseStore | None = None
        self._access: AccessControl | None = None
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        home: str | os.PathLike | None = None,
        *,
        user: str | None = None,
        engine: FaceEngine | None = None,
        authenticated_as: str | None = None,
        **overrides,
    ) -> Workspace:
        """Open (creating if needed) the workspace in ``home`` (default ``$WORKBENCH_HOME`` or
        ``./workspace``) as ``user``; ``overrides`` are settings (``min_face_px=40``...).
        ``authenticated_as``: who the environment authenticated, when it differs from ``user``
        only where declared names are allowed (see :mod:`workbench.access`)."""
        return cls(Settings.load(home, user=user, **overrides), engine=engine, authenticated_as=authenticated_as)

    # -- what it holds ----------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def user(self) -> str:
        return self.settings.user

    @property
    def engine(self) -> FaceEngine:
        """The face engine of the workspace's pack, built on first use."""
        with self._lock:
            if self._engine is None:
                from .engine import FaceEngine

                with private_umask():  # the default pack is converted into models/ on first use
                    self._engine = FaceEngine.from_settings(self.settings)
            return self._engine

    @property
    def gallery(self) -> Gallery:
        with self._lock:
            if self._gallery is None:
                from .gallery.store import Gallery

                self._gallery = Gallery.open(self.settings)
            return self._gallery

    @property
    def cases(self) -> CaseStore:
        with self._lock:
            if self._cases is None:
                from .cases.store import CaseStore

                self._cases = CaseStore.open(self.settings)
            return self._cases

    @property
    def access(self) -> AccessControl:
        """Users and roles (see :mod:`workbench.access`); the first user to open a workspace owns it."""
        with self._lock:
            if self._access is None:
                from .access import AccessControl

                access = AccessControl(self.cases.conn)
                self._check_identity(access)
                access.claim(self.user)
                self._access = access
            return self._access

    def _check_identity(self, access: AccessControl) -> None:
        """A declared user name differing from the authenticated one is honoured only where
        allowed; the audit log then records both names."""
        declared, real = self.user, self.authenticated_as
        if real is None or declared == real:
            return
        if not (self.settings.declared_users or access.declared_users_allowed):
            raise AccessError(
                f"you are {real}; acting as {declared!r} is not allowed in this workspace "
                "(an administrator can allow declared user names: `workbench users allow-declared on`)"
            )
        from . import audit
        from .audit import transaction

        with transaction(self.cases.conn):
            audit.append(
                self.cases.conn, user=declared, action="session.declared_user", details={"declared": declared, "authenticated": real}
            )

    def require(self, action: str) -> None:
        """Refuse (and audit the refusal) unless the user may take ``action`` (an action name of
        :data:`workbench.access.ACTIONS`); for callers that act outside the Workspace's own methods."""
        self.access.require(self.user, action)

    _require = require

    def close(self) -> None:
        """Close the database connections and the loaded index (the engine is kept by callers
        that passed it in)."""
        with self._lock:
            if self._gallery is not None:
                self._gallery.close()
                self._gallery = None
            if self._cases is not None:
                self._cases.conn.close()
                self._cases = None
            self._access = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r}, user={self.user!r})"

    # -- cases --------------------------------------------------------------------------------------

    def open_case(self, reference: str, *, offence: str | None = None, purpose: str | None = None, officer: str | None = None) -> Case:
        """The open case ``reference``; created when ``offence`` and ``purpose`` are given and it
        does not exist yet.

        Raises:
            CaseError: unknown case without offence and purpose to create it, or not open.
        """
        self._require("case.read")
        with self._lock:
            try:
                case = self.cases.case(reference)
            except CaseError:
                if not (offence or purpose):
                    raise
                from .cases.investigate import check_reference

                reference = check_reference(reference)
                self._require("case.new")
                return self.cases.new_case(reference, offence=offence or "", purpose=purpose or "", officer=officer)
            if case.status is not CaseStatus.OPEN:
                raise CaseError(f"case {reference!r} is {case.status.value}: reopen it to search in it")
            return case

    def new_case(self, reference: str, *, offence: str, purpose: str, officer: str | None = None) -> Case:
        """Open a new case (the purpose says why searching is necessary; required).

        Raises:
            CaseError: a reference that is empty, longer than 64 characters or holds control
                characters; missing offence or purpose; the reference exists already.
        """
        from .cases.investigate import check_reference

        reference = check_reference(reference)
        self._require("case.new")
        with self._lock:
            return self.cases.new_case(reference, offence=offence, purpose=purpose, officer=officer)

    def case(self, reference: str) -> Case:
        self._require("case.read")
        with self._lock:
            return self.cases.case(reference)

    def list_cases(self, status: CaseStatus | str | None = None) -> list[Case]:
        self._require("case.read")
        with self._lock:
            return self.cases.cases(None if status is None else CaseStatus.parse(status))

    def set_case_status(self, reference: str, status: CaseStatus | str, *, reason: str = "") -> Case:
        """Close, archive or reopen a case (audited)."""
        status = CaseStatus.parse(status)
        self._require("case.archive" if status is CaseStatus.ARCHIVED else "case.status")
        with self._lock:
            return self.cases.set_status(reference, status, reason=reason)

    # -- exhibits and uploads -----------------------------------------------------------------------

    def save_upload(self, name: str, data: bytes) -> Path:
        """Keep an uploaded file as ``<home>/uploads/<sha256>/<name>`` and return the path.

        The folder is the content's sha256, so the name given can never choose where a file goes:
        it is reduced to letters, digits, ``.``, ``-`` and ``_`` (at most 80) and only labels the
        file, so probes and reports show the analyst's name for it.

        Raises:
            WorkbenchError: the file is empty or larger than ``settings.upload_max_bytes``, or
                its suffix is not one of an image or a video.
        """
        self._require("upload")
        import hashlib
        import re

        from .fileio import atomic_write
        from .footage import VIDEO_SUFFIXES
        from .images import IMAGE_SUFFIXES

        size = len(data)
        if size == 0:
            raise WorkbenchError(f"{name}: the uploaded file is empty")
        if size > self.settings.upload_max_bytes:
            raise WorkbenchError(
                f"{name}: {size / 1e6:.1f} MB is more than the upload limit of "
                f"{self.settings.upload_max_bytes / 1e6:.0f} MB (setting upload_max_bytes)"
            )
        given = Path(str(name).replace("\\", "/")).name
        suffix = Path(given).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) or suffix not in (IMAGE_SUFFIXES | VIDEO_SUFFIXES):
            known = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
            raise WorkbenchError(f"{name}: not an image or video file name (expected one of {known})")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(given).stem).strip("._-")[:80] or "upload"
        digest = hashlib.sha256(data).hexdigest()
        target = self.settings.uploads_dir / digest / f"{stem}{suffix}"
        if not target.exists():
            atomic_write(target, bytes(data))
        log.info("upload %s kept as %s", name, target.relative_to(self.settings.uploads_dir))
        return target

    def exhibits(self) -> list[Path]:
        """Image and video files in the exhibits folder (sub-folders included), sorted."""
        self._require("footage.extract")
        from .footage import VIDEO_SUFFIXES
        from .images import IMAGE_SUFFIXES

        root = self.settings.exhibits_path
        if not root.is_dir():
            return []
        wanted = IMAGE_SUFFIXES | VIDEO_SUFFIXES
        return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.suffix.lower() in wanted)

    # -- footage ------------------------------------------------------------------------------------

    def extract(
        self,
        path: str | os.PathLike,
        *,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> FootageResult:
        """Face tracks of a video, a still or a folder of stills, extracted once.

        Args:
            fps: frames per second sampled (default ``settings.footage_fps``; None in settings
                terms is not allowed here: pass 0 < fps).
            start_s, end_s: the time range, seconds from the start of the footage.
            progress: called with (seconds of footage done, seconds to do).
            cancel: set it to stop early; the tracks found so far are kept and the result's
                warnings say where it stopped.

        Raises:
            FootageError: the source cannot be read at all (partial damage is a warning).
        """
        self._require("footage.extract")
        from .footage import Sampling, extract

        fps = self.settings.footage_fps if fps is None else float(fps)
        sampling = Sampling(fps=fps, start_s=start_s, end_s=end_s)
        result = extract(path, self.engine, sampling=sampling, progress=progress, cancel=cancel)
        log.info("extracted %s: %d tracks from %d sampled frames", path, len(result.tracks), result.frames_sampled)
        return result

    @staticmethod
    def tracks_frame(footage: FootageResult) -> pd.DataFrame:
        """One row per track: track_id, start_s, end_s, n_faces, quality, best frame and time."""
        return footage.tracks_table()

    # -- probes -------------------------------------------------------------------------------------

    def probe_from_track(self, footage: FootageResult, track_id: int) -> Probe:
        """A probe from a face track: its good faces fused, the best shot as the face shown."""
        self._require("search.run")
        from .cases.investigate import probe_from_track

        return probe_from_track(footage, int(track_id))

    def probes_from_still(self, path: str | os.PathLike) -> list[Probe]:
        """One probe per face the detector finds in a still image, most prominent first."""
        self._require("search.run")
        from .cases.investigate import probes_from_image
        from .fileio import sha256_file

        rgb = self.engine.load(path)
        return probes_from_image(rgb, self.engine, source=str(path), source_sha256=sha256_file(path))

    def probe_from_box(
        self,
        source: str | os.PathLike | FootageResult,
        bbox_xyxy: Sequence[float],
        *,
        frame_index: int | None = None,
        timestamp_s: float | None = None,
    ) -> Probe:
        """A manual probe: a box a person drew round a face, aligned and embedded as drawn.

        Args:
            source: a still image file, or extracted footage (then give the frame).
            bbox_xyxy: the box in pixels of that still or frame.
            frame_index, timestamp_s: the frame of the footage the box was drawn on.
        """
        self._require("search.run")
        from .cases.investigate import probe_from_box
        from .fileio import sha256_file
        from .footage import FootageResult

        if isinstance(source, FootageResult):
            if frame_index is None or timestamp_s is None:
                raise FootageError(f"{source.info.path}: say on which frame the box was drawn (frame_index and timestamp_s)")
            rgb = source.frame(int(frame_index), float(timestamp_s))
            return probe_from_box(
                rgb,
                bbox_xyxy,
                self.engine,
                source=source.info.path,
                source_sha256=source.info.sha256,
                frame_index=int(frame_index),
                timestamp_s=float(timestamp_s),
            )
        rgb = self.engine.load(source)
        return probe_from_box(rgb, bbox_xyxy, self.engine, source=str(source), source_sha256=sha256_file(source))

    def probes_from_files(self, paths: Sequence[str | os.PathLike], *, fuse: bool = False) -> list[Probe]:
        """Probes of image or video files: a face per probe for images, a track per probe for
        videos. ``fuse``: the files show one person; their best faces become one probe.

        Raises:
            CaseError: two probes would share an id (the same file given twice).
        """
        self._require("search.run")
        from .cases.investigate import fuse_probes, probes_from_path

        if not paths:
            raise CaseError("give at least one probe image or video")
        names = [Path(p).name for p in paths]
        if not fuse and len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise CaseError(f"two probe files have the same name ({', '.join(twice)}): rename one, or give each once")
        probes = [p for path in paths for p in probes_from_path(path, self.engine, fuse=fuse)]
        if fuse and len(probes) > 1:
            return [fuse_probes(probes)]
        ids = [p.probe_id for p in probes]
        if len(set(ids)) != len(ids):
            names = sorted({i.split("#")[0] for i in ids if ids.count(i) > 1})
            raise CaseError(f"two probe files have the same name ({', '.join(names)}): rename one, or give each once")
        return probes

    # -- search ---------------------------------------------------------------------------------------

    def search(
        self,
        case_ref: str,
        probes: Probe | Sequence[Probe],
        *,
        top: int | None = None,
        threshold: float | None = None,
        mode: SearchMode | str = SearchMode.INVESTIGATION,
        exact: bool | None = None,
    ) -> SearchRun:
        """Search probes inside an open case; the run is recorded (probes, settings, the lists
        exactly as shown) and audited.

        Args:
            top: candidates per probe (default ``settings.top``).
            threshold: operating threshold, cosine (default: the pack's set threshold version,
                then settings, then the pack's default; see :meth:`operating_point`). Lower
                than the set version: the run carries a warning.
            mode: investigation (fixed-length list) or identification (only above threshold).
            exact: True forces exact search; None lets the gallery choose.

        The run records the pack's threshold version in force, and each candidate its
        ``fmr_at_score`` from the gallery's calibration (recalibrated first when the gallery
        changed, see :mod:`workbench.thresholds`).

        Raises:
            CaseError: the case is unknown or not open (checked first).
            PackMismatchError, GalleryError: the probes' pack is not the gallery's; empty gallery.
        """
        self._require("search.run")
        from .cases.investigate import search_and_record

        probes = [probes] if isinstance(probes, Probe) else list(probes)
        top = self.settings.top if top is None else int(top)
        with self._lock:
            self.cases.require_open(case_ref)
            pack = next((f.pack_id for p in probes for f in p.faces if f.pack_id is not None), None)
            point = self._operating_point(threshold, pack)
            return search_and_record(
                self.cases,
                self.gallery,
                case_ref,
                probes,
                top=top,
                mode=SearchMode.parse(mode),
                exact=exact,
                pack_default=self.engine.pack.default_threshold,
                operating=point,
                calibration=self._current_calibration(),
            )

    def search_files(self, case_ref: str, paths: Sequence[str | os.PathLike], *, fuse: bool = False, **options) -> SearchRun:
        """:meth:`search` on the probes of image or video files (the command line's search).
        The case is checked before any file is read."""
        self._require("search.run")
        with self._lock:
            self.cases.require_open(case_ref)
        probes = self.probes_from_files(paths, fuse=fuse)
        return self.search(case_ref, probes, **options)

    def search_run(self, search_id: int) -> SearchRun:
        self._require("case.read")
        with self._lock:
            return self.cases.search(int(search_id))

    def searches(self, case_ref: str) -> list[SearchRun]:
        self._require("case.read")
        with self._lock:
            return self.cases.searches(case_ref)

    def replay(self, search_id: int) -> ReplayResult:
        """Re-run a recorded search with its probe embeddings and settings; say what changed."""
        self._require("search.replay")
        from .cases.investigate import replay

        with self._lock:
            return replay(self.cases, self.gallery, int(search_id), calibration=self._current_calibration())

    # -- operating thresholds and what scores mean (see workbench.thresholds) ----------------------------

    def _operating_point(self, threshold: float | None, pack=None):
        from .thresholds import current_threshold, operating_point

        pack = pack or self.engine.pack_id
        version = current_threshold(self.cases.conn, pack)
        default = self.engine.pack.default_threshold if str(pack) == str(self.engine.pack_id) else None
        return operating_point(threshold, version, settings_threshold=self.settings.threshold, pack_default=default)

    def operating_point(self, threshold: float | None = None):
        """The threshold a search would use now and where it comes from: ``threshold`` if
        given, else the pack's set version, else the ``threshold`` setting, else the pack's
        default (a :class:`~workbench.thresholds.OperatingPoint`, with the version in force)."""
        self._require("case.read")
        with self._lock:
            return self._operating_point(threshold)

    def current_threshold(self):
        """The workspace pack's threshold version in force, or None when none was set."""
        self._require("case.read")
        from .thresholds import current_threshold

        with self._lock:
            return current_threshold(self.cases.conn, self.engine.pack_id)

    def threshold_history(self, *, all_packs: bool = False) -> list:
        """Every threshold version of the workspace's pack (or of every pack), oldest first."""
        self._require("case.read")
        from .thresholds import threshold_history

        with self._lock:
            return threshold_history(self.cases.conn, None if all_packs else self.engine.pack_id)

    def set_threshold(self, value: float, *, reason: str, evaluation: str | os.PathLike | None = None):
        """Set a new operating threshold version for the workspace's pack (who, when, why, the
        evaluation file's sha256), audited; every later search records it.

        Raises:
            WorkbenchError: a value outside [-1, 1], no reason, an evaluation file that is missing
                or measured another pack.
        """
        self._require("settings.change")
        from .thresholds import set_threshold

        with self._lock:
            version = set_threshold(
                self.cases.conn, user=self.user, pack_id=self.engine.pack_id, threshold=value, reason=reason, evaluation=evaluation
            )
        log.info("threshold version %s for %s: %.4f", version.version, version.pack_short, version.threshold)
        return version

    def _current_calibration(self):
        from .thresholds import ensure_calibration

        return ensure_calibration(self.cases.conn, self.gallery, user=self.user)

    def calibration(self):
        """The latest score calibration of the gallery's pack (None when there is none yet)."""
        self._require("case.read")
        from .thresholds import latest_calibration

        with self._lock:
            pack = self.gallery.pack_id
            return latest_calibration(self.cases.conn, pack) if pack is not None else None

    def calibrate(self, *, max_pairs: int | None = None, seed: int = 0):
        """Calibrate the gallery's scores now against its non-mated comparisons (stored, audited);
        None when the gallery has fewer than two subjects. Searches also recalibrate by themselves
        when the gallery changed."""
        self._require("evaluate")
        from .thresholds import MAX_PAIRS, calibrate, store_calibration

        with self._lock:
            fresh = calibrate(self.gallery, user=self.user, max_pairs=max_pairs or MAX_PAIRS, seed=seed)
            return None if fresh is None else store_calibration(self.cases.conn, fresh, why="asked for")

    def recommend_threshold(
        self,
        *,
        pairs: str | os.PathLike | None = None,
        images: str | os.PathLike | None = None,
        gallery: str | os.PathLike | None = None,
        probes: str | os.PathLike | None = None,
        target_fmr: float | None = None,
        target_fpir: float | None = None,
        groups: str | os.PathLike | None = None,
        bootstrap: int = 1000,
        seed: int = 0,
        aligned: bool = False,
        progress: Progress | None = None,
    ) -> dict:
        """Measure the workspace's pack on labelled images and recommend a threshold for a target
        FMR (pairs CSV with its images folder) or FPIR (gallery and probes folders): the threshold
        with its bootstrap interval, the expected FNMR (FNIR), and the per-group table at it
        (:func:`workbench.evaluate.recommend_threshold`). Nothing is set: see :meth:`set_threshold`."""
        self._require("evaluate")
        from . import evaluate

        metadata = evaluate.read_groups(groups) if groups else None
        if (target_fmr is None) == (target_fpir is None):
            raise WorkbenchError("give a target FMR (with --pairs and --images) or a target FPIR (with --gallery and --probes)")
        if target_fmr is not None:
            if not (pairs and images):
                raise WorkbenchError("a target FMR needs a pairs CSV (--pairs) and its images folder (--images)")
            result = evaluate.evaluate_pairs(self.engine, Path(pairs), Path(images), aligned=aligned, progress=progress, return_scores=True)
        else:
            if not (gallery and probes):
                raise WorkbenchError("a target FPIR needs a gallery folder (--gallery) and a probes folder (--probes)")
            result = evaluate.evaluate_identification(
                self.engine, Path(gallery), Path(probes), aligned=aligned, progress=progress, return_scores=True
            )
        recommendation = evaluate.recommend_threshold(
            result, target_fmr=target_fmr, target_fpir=target_fpir, groups=metadata, n_boot=bootstrap, seed=seed
        )
        current = self.current_threshold()
        recommendation["current_version"] = current.as_dict() if current else None
        return recommendation

    # -- review ----------------------------------------------------------------------------------------

    def first_verdict(
        self, search_id: int, subject_id: str, verdict: Verdict | str, reason: str, *, probe_id: str | None = None
    ) -> Decision:
        """The first reviewer's verdict on a candidate, with a reason (supersedes an earlier one)."""
        self._require("review.first")
        with self._lock:
            return self.cases.record_first(int(search_id), subject_id, Verdict.parse(verdict), reason, probe_id=probe_id)

    def second_verdict(
        self, search_id: int, subject_id: str, agreement: Agreement | str, reason: str, *, probe_id: str | None = None
    ) -> Decision:
        """A second, different person confirms or disagrees with the current first verdict."""
        self._require("review.second")
        with self._lock:
            return self.cases.record_second(int(search_id), subject_id, Agreement.parse(agreement), reason, probe_id=probe_id)

    def review_status(self, search_id: int) -> list[CandidateReview]:
        """Where the review of every candidate of a search stands, in the order shown."""
        self._require("case.read")
        with self._lock:
            return self.cases.review(int(search_id))

    def decisions(self, case_ref: str) -> list[Decision]:
        self._require("case.read")
        with self._lock:
            return self.cases.decisions(case_ref=case_ref)

    def awaiting_second_review(self) -> list[CandidateReview]:
        """Candidates of searches in open or closed cases that have a current first verdict and
        no current second one, oldest search first: the reviewer's queue."""
        self._require("case.read")
        from .types import ReviewStatus

        waiting = []
        with self._lock:
            for case in self.cases.cases():
                if case.status is CaseStatus.ARCHIVED:
                    continue
                for search_id in self.cases.search_ids(case.reference):  # lists only: no probe crops or embeddings
                    waiting += [
                        r
                        for r in self.cases.review(search_id)
                        if r.first is not None and r.second is None and r.status is ReviewStatus.PENDING
                    ]
        return waiting

    # -- pictures for reviewers --------------------------------------------------------------------

    def custody_face(self, face_id: int, *, size: int = 320) -> np.ndarray | None:
        """The custody photo's face (box plus a margin, at most ``size`` px), RGB; None when the
        record or its file is gone."""
        self._require("gallery.read")
        from .cases.report_data import custody_crop

        with self._lock:
            return custody_crop(self.cases.conn, face_id, size=size)

    # -- reports and audit ---------------------------------------------------------------------------

    def export_report(self, case_ref: str, out: str | os.PathLike) -> dict:
        """Write the case report (PDF or HTML by suffix); the export is audited with its sha256."""
        self._require("report.export")
        from .cases.report_data import export_report

        out = checked_output_path(out, what="report")
        try:
            with self._lock:
                return export_report(self.settings, case_ref, out, store=self.cases)
        except OSError as exc:  # written atomically: the previous file, if any, is unchanged
            raise WorkbenchError(f"cannot write the report: {os_error_message(exc)}; nothing was exported") from exc

    def verify_audit(self):
        """Check the audit log: the keyed chain, the rows it covers (cases, searches, decisions,
        custody records) and its head against the checkpoints outside the workspace. ``ok`` only
        when all agree; the result names what fails and the checkpoint it was checked against."""
        self._require("audit.read")
        from . import audit

        with self._lock:
            return audit.verify(self.cases.conn)

    def export_audit(self, out: str | os.PathLike, *, case_ref: str | None = None) -> int:
        """Write the audit log (or one case's entries) as CSV, and beside it ``NAME.checkpoint.json``
        (the CSV's sha256, the verification, the signed checkpoint); returns the number of entries."""
        self._require("audit.read")
        from . import audit

        out = checked_output_path(out, what="audit export")
        sidecar = audit.checkpoint_sidecar(out) if hasattr(audit, "checkpoint_sidecar") else None
        written = [p for p in (out, sidecar) if p is not None]
        existed = {p: p.exists() for p in written}
        try:
            with self._lock, private_umask():  # the export names users and cases: owner-only
                count = audit.export_csv(self.cases.conn, out, case_ref=case_ref)
            for path in written:
                if path.exists():
                    os.chmod(path, PRIVATE_FILE)
        except OSError as exc:
            for path in written:  # a half-written export must not pass for a whole one
                if not existed[path]:
                    path.unlink(missing_ok=True)
            raise WorkbenchError(f"cannot write the audit export: {os_error_message(exc)}") from exc
        return count

    # -- gallery (technical staff) -------------------------------------------------------------------

    def enrol(
        self,
        folder: str | os.PathLike | None = None,
        *,
        manifest: str | os.PathLike | None = None,
        report_path: str | os.PathLike | None = None,
        batch_size: int | None = None,
        progress: Progress | None = None,
        follow_symlinks: bool = False,
    ) -> EnrolSummary:
        """Enrol custody images from a folder (one sub-folder per subject) or a manifest CSV.

        Idempotent and resumable; bad rows never stop the batch and are listed in the summary's
        CSV report (``report_path``, default ``<home>/reports/enrol-<time>.csv``).
        ``progress(images_done, images_total)`` after each batch of ``batch_size`` images.
        Symbolic links in the folder are refused (listed in the report) unless
        ``follow_symlinks``; manifest paths must resolve under the manifest's folder or a folder
        of the ``manifest_roots`` setting.
        """
        self._require("gallery.enrol")
        from .gallery.enrol import DEFAULT_BATCH, enrol, items_from_folder, items_from_manifest

        if (folder is None) == (manifest is None):
            raise WorkbenchError("give a custody folder or a manifest CSV (one of them)")
        source = Path(folder if folder is not None else manifest)
        if report_path:
            report_path = checked_output_path(report_path, what="enrolment report")
        else:  # refused rows are reported there: a folder that cannot be written fails now, not mid-batch
            checked_output_dir(self.settings.reports_dir, what="reports folder")
        if folder is not None:
            items, problems = items_from_folder(source, follow_symlinks=follow_symlinks)
        else:
            items, problems = items_from_manifest(source, roots=self.settings.manifest_roots)
        with self._lock:
            return enrol(
                self.gallery,
                self.engine,
                items,
                problems=problems,
                source=str(source),
                report_path=Path(report_path) if report_path else None,
                batch_size=batch_size or DEFAULT_BATCH,
                progress=progress,
            )

    def rebuild_index(self, *, n_trees: int | None = None) -> dict:
        """Build a new Annoy index from the store and swap it in atomically (``n_trees``: default
        from settings); returns the build's manifest."""
        self._require("gallery.rebuild")
        with self._lock:
            return self.gallery.rebuild(n_trees=n_trees)

    def gallery_stats(self) -> dict:
        self._require("gallery.read")
        with self._lock:
            return self.gallery.stats()

    def remove_subject(self, subject_id: str, *, vacuum: bool = True) -> dict:
        """Delete a subject with every image, face and embedding (audited; gone from search at
        once). ``vacuum`` rewrites the database so the deleted bytes leave the file."""
        self._require("gallery.remove")
        with self._lock:
            return self.gallery.remove_subject(subject_id, vacuum=vacuum)

    # -- users and roles (administrators) -----------------------------------------------------------

    def users(self) -> list:
        """Every user the workspace knows, with their roles."""
        self._require("users.manage")
        with self._lock:
            return self.access.users()

    def set_user(self, name: str, roles: Sequence[str]) -> object:
        """Add a user or replace their roles; from then on roles apply as assigned (audited)."""
        with self._lock:
            return self.access.set_user(self.user, name, roles)

    def deactivate_user(self, name: str) -> object:
        with self._lock:
            return self.access.deactivate(self.user, name)

    def allow_declared_users(self, allowed: bool) -> None:
        with self._lock:
            self.access.allow_declared(self.user, allowed)

    # -- retention (administrators) -------------------------------------------------------------------

    def apply_retention(self, *, now: datetime | None = None) -> dict:
        """Apply the retention rule of ``settings.retention_days`` (None: nothing happens).

        Closed cases are archived; archived cases whose last change is older than the period have
        their probe crops and embeddings purged (:meth:`CaseStore.purge_biometrics`), audited,
        with the hashes of their exported reports kept in the audit trail.
        """
        from datetime import UTC, timedelta

        self._require("retention")
        days = self.settings.retention_days
        if days is None:
            return {"retention_days": None, "archived": [], "purged": []}
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        archived, purged = [], []
        with self._lock:
            for case in self.cases.cases():
                if case.status is CaseStatus.CLOSED:
                    self.cases.set_status(case.reference, CaseStatus.ARCHIVED, reason=f"retention: closed cases are archived ({days} days)")
                    archived.append(case.reference)
            for case in self.cases.cases(CaseStatus.ARCHIVED):
                if datetime.fromisoformat(case.updated_utc) <= cutoff and self._holds_biometrics(case.reference):
                    purged.append(self.cases.purge_biometrics(case.reference, reason=f"retention period of {days} days after archiving"))
        return {"retention_days": days, "archived": archived, "purged": purged}

    def _holds_biometrics(self, reference: str) -> bool:
        row = self.cases.conn.execute(
            "SELECT 1 FROM search_probes p JOIN searches s ON s.search_id = p.search_id "
            "WHERE s.case_ref = ? AND length(p.embeddings) > 0 LIMIT 1",
            (reference,),
        ).fetchone()
        return row is not None
