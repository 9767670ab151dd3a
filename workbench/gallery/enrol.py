"""Enrolment of custody images into the gallery: from a folder or a manifest CSV.

Inputs:

* a folder with one sub-folder per subject (folder name = subject id, the custody reference);
  every non-hidden file in a sub-folder is an image to enrol. Symbolic links (sub-folders or
  files) are not followed unless asked (``follow_symlinks``): a link can point anywhere on the
  machine. Refused links and anything that is not a regular file are listed in the report;
* a manifest CSV with a header row: ``subject_id,image_path`` and optionally ``name, dob, sex,
  ethnicity, custody_date, source`` (dates YYYY-MM-DD; sex M, F, X or U). Relative image paths
  resolve against the CSV's folder; every path, once resolved (``..`` and symbolic links
  followed), must lie under the CSV's folder or one of the ``roots`` (setting
  ``manifest_roots``), else the row is refused with the reason. The descriptive fields of the
  latest manifest replace stored ones; empty cells keep them.

Each image is read once: hashed (sha256 of the bytes) and, only if this pack has not enrolled
those bytes yet, decoded and analysed. Images are analysed in batches (``batch_size`` images per
:meth:`FaceEngine.analyse_many`, whose recogniser calls are batched) and each batch is stored in
one transaction with its audit entry. While the models run on one batch, background threads
read and hash the files of the batches after it and decode the next batch's new images (at most
two batches of decoded images in memory); what is enrolled, skipped and reported, and in which
order, is decided in the calling thread exactly as one batch after the other would. So:

* re-running is idempotent: enrolled images are skipped by hash, without decoding;
* a crash or Ctrl-C loses at most the batch in flight, and re-running finishes the job;
* one bad row never stops the batch: it gets a status and a reason.

Statuses: ``enrolled``, ``skipped`` (already enrolled, or the same bytes twice in this run),
``no_face``, ``unreadable`` (missing, empty, corrupt, not an image, too large) and ``invalid``
(a row or folder that names no usable image: bad subject id, bad date, empty folder...). An image
with several faces enrols the most prominent one (largest and most central) and records how many
faces it had (detection stops once no finer level could find a more prominent face, so small
background faces may go uncounted: see ``FaceEngine.detect_rows(prominent_only=True)``).
Every row that was not simply enrolled or skipped as already enrolled goes to the CSV report
(``ref, subject_id, path, status, reason``), written as the run goes.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import logging
import math
import os
import re
import stat
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from ..errors import GalleryError, ImageError, WorkbenchError
from ..fileio import input_problem, open_private, os_reason
from .store import EnrolledImage, Gallery, SubjectRecord

log = logging.getLogger(__name__)

MANIFEST_REQUIRED = ("subject_id", "image_path")
#: largest manifest read (bytes): a million rows fit comfortably.
MANIFEST_MAX_BYTES = 256 * 1024 * 1024
MANIFEST_OPTIONAL = ("name", "dob", "sex", "ethnicity", "custody_date", "source")
SEX_CODES = {"M": "male", "F": "female", "X": "other / indeterminate", "U": "unknown"}
SUBJECT_ID_MAX = 128
#: images analysed per batch (and stored per transaction). 16 keeps a batch under a second.
DEFAULT_BATCH = 16
#: threads reading, hashing and decoding ahead of the models (file reads, sha256 and Pillow's
#: decoder release the GIL, so they run beside onnxruntime).
READ_AHEAD_THREADS = 2
#: most analysis lanes (one-thread engines analysing parts of a batch side by side, see
#: :meth:`FaceEngine.lanes`): one per usable core, up to this many (each holds its own sessions).
MAX_ANALYSIS_LANES = 4


def default_analysis_lanes() -> int:
    """One analysis lane per core this process may use, at most ``MAX_ANALYSIS_LANES``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_ANALYSIS_LANES))


STATUSES = ("enrolled", "skipped", "no_face", "unreadable", "invalid")
_SUBJECT_ID_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")
_ETHNICITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,15}$")


@dataclass(frozen=True)
class EnrolItem:
    """One image to enrol: whose it is, where it is, and where it came from (for the report)."""

    ref: str  # "manifest.csv:12" or "DIR/subject" : where a person finds the row again
    subject: SubjectRecord
    path: Path
    #: read the file even if ``path`` is a symbolic link (only when the caller asked for it).
    follow_symlinks: bool = False


@dataclass(frozen=True)
class Outcome:
    """What became of one row: a status from :data:`STATUSES` and the reason."""

    ref: str
    subject_id: str
    path: str
    status: str
    reason: str = ""


@dataclass
class EnrolSummary:
    """Totals of one enrolment run. ``images_per_s`` counts analysed images (not skipped ones)."""

    run_id: str
    source: str
    pack_id: str
    counts: dict = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    several_faces: int = 0
    seconds: float = 0.0
    analysed: int = 0
    report: str | None = None

    @property
    def images_per_s(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            **self.counts,
            "several_faces": self.several_faces,
            "analysed": self.analysed,
            "seconds": round(self.seconds, 2),
            "images_per_s": round(self.images_per_s, 2),
            "report": self.report,
            "run_id": self.run_id,
            "source": self.source,
            "pack_id": self.pack_id,
        }


# ---------------------------------------------------------------------------------------------
# Reading the inputs


def validate_subject(subject: SubjectRecord) -> SubjectRecord:
    """The record with fields normalised; raises ValueError saying which field is wrong and why."""
    sid = (subject.subject_id or "").strip()
    if not sid:
        raise ValueError("subject_id is empty")
    if len(sid) > SUBJECT_ID_MAX or _SUBJECT_ID_BAD.search(sid) or sid.startswith("."):
        raise ValueError(
            f"subject_id {sid!r} must be 1 to {SUBJECT_ID_MAX} characters without slashes, control characters or a leading dot"
        )
    clean = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in vars(subject).items() if k != "subject_id"}
    for key in ("dob", "custody_date"):
        if clean[key] is not None:
            try:
                day = date.fromisoformat(clean[key])
            except ValueError:
                raise ValueError(f"{key} must be a date YYYY-MM-DD, got {clean[key]!r}") from None
            if len(clean[key]) != 10 or day > date.today():
                raise ValueError(f"{key} must be a past date YYYY-MM-DD, got {clean[key]!r}")
    if clean["sex"] is not None:
        code = clean["sex"].upper()
        if code not in SEX_CODES:
            raise ValueError(f"sex must be one of {', '.join(SEX_CODES)} ({', '.join(SEX_CODES.values())}), got {clean['sex']!r}")
        clean["sex"] = code
    if clean["ethnicity"] is not None and not _ETHNICITY.match(clean["ethnicity"]):
        raise ValueError(f"ethnicity must be a short code (letters, digits, up to 16 characters), got {clean['ethnicity']!r}")
    if clean["name"] is not None and len(clean["name"]) > 200:
        raise ValueError("name is longer than 200 characters")
    return SubjectRecord(subject_id=sid, **clean)


SYMLINK_REFUSED = "symbolic link, not followed (it may point outside the folder given); use --follow-symlinks to enrol it"


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise GalleryError(f"{folder}: cannot list the folder ({os_reason(exc)})") from exc


def items_from_folder(folder: Path, *, follow_symlinks: bool = False) -> tuple[list[EnrolItem], list[Outcome]]:
    """Items of a folder of subject sub-folders, and the problems found while listing it.

    Symbolic links inside the folder (subject folders or images) are refused with the reason
    unless ``follow_symlinks``; so is anything that is not a folder or a regular file.

    Raises:
        GalleryError: the folder is missing, not a folder, or holds no subject sub-folder.
    """
    folder = Path(folder)
    problem = input_problem(folder)
    if problem == "no such file":
        raise GalleryError(f"{folder}: no such folder; expected a folder with one sub-folder per subject")
    if problem:
        raise GalleryError(f"{folder}: {problem}; expected a folder with one sub-folder per subject")
    if not folder.is_dir():
        raise GalleryError(f"{folder}: is a file; expected a folder with one sub-folder per subject (or use --manifest CSV)")
    items, problems = [], []
    entries = _listing(folder)
    links = [p for p in entries if p.is_symlink() and not follow_symlinks]
    for link in links:
        problems.append(Outcome(str(link), "", str(link), "invalid", SYMLINK_REFUSED))
    entries = [p for p in entries if p not in links]
    subjects = [p for p in entries if p.is_dir()]
    if not subjects:
        raise GalleryError(f"{folder}: holds no sub-folders; expected one sub-folder per subject (folder name = subject id)")
    for stray in (p for p in entries if not p.is_dir()):
        problems.append(Outcome(str(stray), "", str(stray), "invalid", "file outside a subject sub-folder: whose image it is is unknown"))
    for sub in subjects:
        try:
            subject = validate_subject(SubjectRecord(sub.name, source=f"folder {folder}"))
        except ValueError as exc:
            problems.append(Outcome(str(sub), sub.name, str(sub), "invalid", str(exc)))
            continue
        try:
            contents = _listing(sub)
        except GalleryError as exc:
            problems.append(Outcome(str(sub), subject.subject_id, str(sub), "unreadable", str(exc).split(": ", 1)[-1]))
            continue
        files = []
        for path in contents:
            if path.is_symlink() and not follow_symlinks:
                problems.append(Outcome(str(sub), subject.subject_id, str(path), "invalid", SYMLINK_REFUSED))
            elif path.is_file():
                files.append(path)
            elif path.is_dir():
                problems.append(
                    Outcome(str(sub), subject.subject_id, str(path), "invalid", "a folder inside a subject folder: not enrolled")
                )
            else:
                why = input_problem(path) or "not a regular file (device, pipe or socket)"
                problems.append(Outcome(str(sub), subject.subject_id, str(path), "unreadable", why))
        if not files and not contents:
            problems.append(Outcome(str(sub), subject.subject_id, str(sub), "invalid", "subject folder holds no image files"))
        items.extend(EnrolItem(str(sub), subject, path, follow_symlinks=follow_symlinks) for path in files)
    return items, problems


def _resolve_under(raw: str, base: Path, roots: Sequence[Path]) -> tuple[Path | None, str]:
    """(the resolved path, "") when ``raw`` (relative to ``base``) resolves under ``base`` or a
    root, else (None, the reason it is refused)."""
    if "\x00" in raw:
        return None, "image_path holds a NUL character"
    candidate = Path(raw) if Path(raw).is_absolute() else base / raw
    resolved = Path(os.path.realpath(candidate))
    allowed = [Path(os.path.realpath(base))] + [Path(os.path.realpath(r)) for r in roots]
    if any(resolved == a or resolved.is_relative_to(a) for a in allowed):
        return resolved, ""
    where = f"the manifest's folder {allowed[0]}" + (f" or the manifest_roots {', '.join(map(str, allowed[1:]))}" if roots else "")
    return None, (
        f"path resolves to {resolved}, outside {where}; refused "
        "(add its folder to the manifest_roots setting to allow it)"
    )


def items_from_manifest(manifest: Path, *, roots: Sequence[Path] = ()) -> tuple[list[EnrolItem], list[Outcome]]:
    """Items of a manifest CSV, and its bad rows as outcomes (the batch goes on without them).

    Args:
        roots: folders besides the manifest's own whose images the manifest may name (setting
            ``manifest_roots``); a path resolving anywhere else is refused with the reason.

    Raises:
        GalleryError: the CSV is missing, unreadable, too large, or its header lacks or
            misnames columns.
    """
    manifest = Path(manifest)
    problem = input_problem(manifest)
    if problem or not manifest.is_file():
        what = "no such manifest file" if problem in (None, "no such file") else problem
        if problem is None:
            what = "is a folder, not a manifest file" if manifest.is_dir() else "not a regular file"
        raise GalleryError(f"{manifest}: {what}; expected a CSV with columns subject_id,image_path[,{','.join(MANIFEST_OPTIONAL)}]")
    size = manifest.stat().st_size
    if size > MANIFEST_MAX_BYTES:
        raise GalleryError(f"{manifest}: {size / 1e6:.0f} MB is more than a manifest may be ({MANIFEST_MAX_BYTES / 1e6:.0f} MB); split it")
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise GalleryError(f"{manifest}: not a readable UTF-8 CSV ({exc})") from exc
    except OSError as exc:
        raise GalleryError(f"{manifest}: cannot be read ({os_reason(exc)})") from exc
    if not rows:
        raise GalleryError(f"{manifest}: is empty; expected a header row subject_id,image_path[,...]")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in MANIFEST_REQUIRED if c not in header]
    unknown = [c for c in header if c not in MANIFEST_REQUIRED + MANIFEST_OPTIONAL]
    if missing or unknown or len(set(header)) != len(header):
        raise GalleryError(
            f"{manifest}: header {','.join(header)!r} must name the columns {','.join(MANIFEST_REQUIRED)} and optionally "
            f"{','.join(MANIFEST_OPTIONAL)}, each once"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    items, problems = [], []
    for number, row in enumerate(rows[1:], start=2):
        ref = f"{manifest}:{number}"
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not rows
        if len(row) != len(header):
            problems.append(Outcome(ref, row[0] if row else "", "", "invalid", f"row has {len(row)} fields, the header has {len(header)}"))
            continue
        values = dict(zip(header, row))
        raw_path = values.pop("image_path").strip()
        try:
            subject = validate_subject(SubjectRecord(**{k: values.get(k) for k in ("subject_id",) + MANIFEST_OPTIONAL}))
            if not raw_path:
                raise ValueError("image_path is empty")
        except ValueError as exc:
            problems.append(Outcome(ref, values.get("subject_id", "").strip(), raw_path, "invalid", str(exc)))
            continue
        if subject.source is None:
            subject = replace(subject, source=f"manifest {manifest}")
        path, refused = _resolve_under(raw_path, manifest.parent, roots)
        if path is None:
            problems.append(Outcome(ref, subject.subject_id, raw_path, "invalid", refused))
            continue
        items.append(EnrolItem(ref, subject, path))
    if not items and not problems:
        raise GalleryError(f"{manifest}: holds a header but no rows to enrol")
    return items, problems


# ---------------------------------------------------------------------------------------------
# Enrolling


class _Report:
    """The CSV report, created at its first row and flushed per batch (a crash keeps what was written)."""

    COLUMNS = ("ref", "subject_id", "path", "status", "reason")

    def __init__(self, path: Path):
        self.path = path
        self.handle = None
        self.writer = None

    def add(self, outcome: Outcome) -> None:
        if self.handle is None:
            self.handle = open_private(self.path, "w", newline="", encoding="utf-8")  # owner-only: names subjects
            self.writer = csv.writer(self.handle)
            self.writer.writerow(self.COLUMNS)
        self.writer.writerow([getattr(outcome, c) for c in self.COLUMNS])

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


@dataclass
class _Fetched:
    """An item's bytes and their sha256, read in a background thread, or why they could not be read."""

    item: EnrolItem
    data: bytes = b""
    sha256: str = ""
    refused: _Refused | None = None


@dataclass
class _Read:
    """An item whose bytes were read and hashed, and are not enrolled yet."""

    item: EnrolItem
    data: bytes
    sha256: str
    #: the image decoded ahead in a background thread (engine.load), if it was started
    decoding: Future | None = None

    def decoded(self, engine) -> np.ndarray:
        """The upright (H, W, 3) uint8 RGB image. Raises ImageError as :meth:`FaceEngine.load` does."""
        return self.decoding.result() if self.decoding is not None else engine.load(self.data)


class _ReadAhead:
    """Reads and hashes the files of batch ``k + 2`` and decodes the images of batch ``k + 1`` in
    background threads while the models run on batch ``k``.

    File reads, sha256 and Pillow's decoder release the GIL, so they use the core the models
    leave idle. Nothing here touches the database or the report: which files are refused,
    skipped or enrolled is still decided in the main thread, in item order, when their batch's
    turn comes (:func:`_screen`). Only images the gallery does not hold yet are decoded ahead
    (the main thread checks their sha256 first), so a re-run decodes nothing.
    """

    def __init__(self, engine, batches: Sequence[Sequence[EnrolItem]], threads: int = READ_AHEAD_THREADS):
        self.engine = engine
        self.batches = batches
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="enrol-read") if threads > 0 else _InThisThread()
        self.fetches: dict[int, list[Future]] = {}
        self.decodes: dict[int, dict[int, Future]] = {}  # batch -> position -> decoded image

    def read(self, batch: int) -> None:
        """Start reading and hashing the files of ``batch`` (no-op past the last batch)."""
        if batch < len(self.batches) and batch not in self.fetches:
            limit = self.engine.settings.max_file_bytes
            self.fetches[batch] = [self.pool.submit(_fetch, item, limit) for item in self.batches[batch]]

    def fetched(self, batch: int) -> list[tuple[_Fetched, Future | None]]:
        """The files of ``batch``, read and hashed, in item order (waits for them), each with its
        decoding if :meth:`decode` started one. Forgets the batch."""
        self.read(batch)
        decodes = self.decodes.pop(batch, {})
        return [(future.result(), decodes.get(position)) for position, future in enumerate(self.fetches.pop(batch))]

    def decode(self, batch: int, is_new: Callable[[str], bool]) -> None:
        """Start decoding the images of ``batch`` whose sha256 ``is_new`` (not enrolled, not seen)."""
        if batch >= len(self.batches):
            return
        self.read(batch)
        decodes, started = {}, set()  # the same bytes twice in a batch are decoded once
        for position, future in enumerate(self.fetches[batch]):
            got = future.result()
            if got.refused is None and got.sha256 not in started and is_new(got.sha256):
                started.add(got.sha256)
                decodes[position] = self.pool.submit(self.engine.load, got.data)
        self.decodes[batch] = decodes

    def close(self) -> None:
        """Drop the work not started and wait for the reads and decodes running (milliseconds)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class _InThisThread:
    """An executor that runs each task at once in the calling thread (``read_ahead=0``)."""

    def submit(self, function, *args) -> Future:
        future = Future()
        try:
            future.set_result(function(*args))
        except Exception as exc:  # delivered by future.result(), as a thread pool would
            future.set_exception(exc)
        return future

    def shutdown(self, **_) -> None:
        pass


def enrol(
    gallery: Gallery,
    engine,
    items: Sequence[EnrolItem],
    *,
    problems: Sequence[Outcome] = (),
    source: str = "",
    report_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[float, float], None] | None = None,
    read_ahead: int = READ_AHEAD_THREADS,
    lanes: int | None = None,
) -> EnrolSummary:
    """Enrol items with ``engine`` into ``gallery``; see the module docstring for the rules.

    Files are read, hashed and decoded one or two batches ahead in ``read_ahead`` background
    threads (:class:`_ReadAhead`) while the models run on the current batch; what is stored,
    skipped and reported, and in which order, is the same as enrolling one batch after the
    other (``read_ahead=0``: everything in the calling thread, as the benchmark's baseline).
    Each batch's images are analysed in ``lanes`` parts side by side, one one-thread engine per
    part (:meth:`FaceEngine.lanes`; default one per core), and stored together once all parts
    are done, so the batch is screened, stored and reported exactly as with one lane
    (``lanes=1``: ``engine`` itself analyses the whole batch in the calling thread).

    Args:
        problems: outcomes already known (bad rows found while reading the input); reported.
        source: the folder or manifest, for the audit log and the summary.
        report_path: CSV report (default ``<home>/reports/enrol-<UTC time>.csv``), created only
            if there is something to report.
        batch_size: images per analysis batch and per transaction.
        progress: called as ``progress(items_done, items_total)`` after each batch.

    Raises:
        PackMismatchError: the gallery holds embeddings of another pack than the engine's.
    """
    gallery.check_pack(engine.pack_id, what=f"enrolment with {engine.pack_id}")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    summary = EnrolSummary(run_id=run_id, source=source, pack_id=str(engine.pack_id))
    report = _Report(Path(report_path) if report_path else gallery.settings.reports_dir / f"enrol-{run_id}.csv")
    started = time.monotonic()
    seen: dict[str, str] = {}  # sha256 -> ref of its first row in this run
    batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]

    def is_new(sha256: str) -> bool:
        return sha256 not in seen and gallery.enrolled_image(sha256, engine.pack_id) is None

    ahead = _ReadAhead(engine, batches, threads=read_ahead)
    analysis = _Lanes(engine, default_analysis_lanes() if lanes is None else lanes, images=len(items))
    try:
        for outcome in problems:
            _record(summary, report, outcome)
        ahead.read(0)
        ahead.decode(0, is_new)
        ahead.read(1)
        done = 0
        for index, batch in enumerate(batches):
            fresh = []
            for fetched, decoding in ahead.fetched(index):
                read = _screen(fetched, engine, report, summary, gallery, seen)
                if read is not None:
                    read.decoding = decoding
                    fresh.append(read)
            ahead.decode(index + 1, is_new)  # after _screen: `seen` now holds this batch
            ahead.read(index + 2)
            if fresh:
                _enrol_batch(gallery, analysis, fresh, report, summary, run_id, source)
            report.flush()
            done += len(batch)
            if progress is not None:
                progress(done, len(items))
    finally:
        ahead.close()
        analysis.close()
        report.close()
        summary.seconds = time.monotonic() - started
    summary.report = str(report.path) if report.handle is not None else None
    log.info("enrolment %s from %s: %s in %.1f s", run_id, source, dict(summary.counts), summary.seconds)
    return summary


def _record(summary: EnrolSummary, report: _Report, outcome: Outcome, *, to_report: bool = True) -> None:
    summary.counts[outcome.status] += 1
    if to_report:
        report.add(outcome)


def _fetch(item: EnrolItem, limit: int) -> _Fetched:
    """Read and hash one file (runs in a background thread: no database, no report)."""
    try:
        data = _read_file(item, limit)
    except _Refused as exc:
        return _Fetched(item, refused=exc)
    return _Fetched(item, data, hashlib.sha256(data).hexdigest())


def _screen(fetched: _Fetched, engine, report, summary, gallery: Gallery, seen: dict) -> _Read | None:
    """The file to analyse, or None after recording why not (unreadable, already enrolled, same bytes twice)."""
    item, digest = fetched.item, fetched.sha256
    shown = str(item.path)
    if fetched.refused is not None:
        _record(summary, report, Outcome(item.ref, item.subject.subject_id, shown, fetched.refused.status, fetched.refused.reason))
        return None
    stored = gallery.enrolled_image(digest, engine.pack_id)
    if stored is None and digest in seen:
        _record(summary, report, Outcome(item.ref, item.subject.subject_id, shown, "skipped", f"same bytes as {seen[digest]} in this run"))
        return None
    seen[digest] = item.ref
    if stored is not None:
        if stored["subject_id"] == item.subject.subject_id:
            if any((item.subject.name, item.subject.dob, item.subject.sex, item.subject.ethnicity, item.subject.custody_date)):
                gallery.update_subject(item.subject)  # a re-run may bring corrected descriptive fields
            _record(summary, report, Outcome(item.ref, item.subject.subject_id, shown, "skipped"), to_report=False)
        else:
            _record(
                summary,
                report,
                Outcome(
                    item.ref,
                    item.subject.subject_id,
                    shown,
                    "skipped",
                    f"same bytes already enrolled for subject {stored['subject_id']} (image {stored['image_id']})",
                ),
            )
        return None
    return _Read(item, fetched.data, digest)


class _Refused(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _read_file(item: EnrolItem, limit: int) -> bytes:
    """The bytes of a regular file, read through one descriptor (no symbolic link unless the
    item allows it; nothing that is not a regular file: a pipe or device would block or never end).

    Raises:
        _Refused: with the outcome's status and the reason.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if item.follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(item.path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not item.follow_symlinks and item.path.is_symlink():  # O_NOFOLLOW refused a link
            raise _Refused("invalid", SYMLINK_REFUSED) from None
        raise _Refused("unreadable", input_problem(item.path) or os_reason(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _Refused("unreadable", "is a folder, expected an image file")
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("unreadable", "not a regular file (device, pipe or socket)")
        if info.st_size > limit:
            raise _Refused("unreadable", f"file is {info.st_size / 1e6:.0f} MB, above the {limit / 1e6:.0f} MB limit")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise _Refused("unreadable", f"file grew above the {limit / 1e6:.0f} MB limit while it was read")
        return data
    except OSError as exc:
        raise _Refused("unreadable", os_reason(exc)) from None
    finally:
        os.close(fd)


def _enrol_batch(gallery: Gallery, analysis: _Lanes, fresh: list[_Read], report, summary: EnrolSummary, run_id: str, source: str) -> None:
    engine = analysis.engine
    decoded, readable = [], []
    for read in fresh:
        try:
            decoded.append(read.decoded(engine))
            readable.append(read)
        except ImageError as exc:
            reason = str(exc).split(": ", 1)[-1]  # the message names "<N bytes>": say the path instead
            _record(summary, report, Outcome(read.item.ref, read.item.subject.subject_id, str(read.item.path), "unreadable", reason))
    per_image = _analyse(analysis, decoded, readable, report, summary)
    summary.analysed += len(readable)
    to_store = []
    for read, rgb, faces in zip(readable, decoded, per_image):
        item = read.item
        if faces is None:
            continue
        if not faces:
            _record(summary, report, Outcome(item.ref, item.subject.subject_id, str(item.path), "no_face", "no face found"))
            continue
        to_store.append(
            EnrolledImage(
                subject=item.subject,
                path=str(item.path),
                sha256=read.sha256,
                size_bytes=len(read.data),
                width_px=int(rgb.shape[1]),
                height_px=int(rgb.shape[0]),
                faces_found=len(faces),
                face=faces[0],  # the engine lists the most prominent face first
                capture_date=item.subject.custody_date,
            )
        )
    if not to_store:
        return
    image_ids = gallery.add_images(
        to_store, audit_details={"run_id": run_id, "source": source, "several_faces": sum(i.faces_found > 1 for i in to_store)}
    )
    for image, image_id in zip(to_store, image_ids):
        if image_id is None:
            _record(
                summary, report, Outcome("", image.subject.subject_id, image.path, "skipped", "enrolled meanwhile by another enrolment")
            )
            continue
        several = image.faces_found > 1
        summary.several_faces += several
        reason = f"{image.faces_found} faces found: enrolled the most prominent (largest and most central)" if several else ""
        outcome = Outcome("", image.subject.subject_id, image.path, "enrolled", reason)
        _record(summary, report, outcome, to_report=several)


class _Lanes:
    """Analyses a batch in parts side by side on one-thread engines (:meth:`FaceEngine.lanes`).

    With one lane, fewer images in the whole enrolment than lanes, or a batch of one image,
    ``engine`` itself analyses in the calling thread. The lanes and their threads are made at
    the first batch of two or more images to analyse, so a re-run that skips every image loads
    no lane.
    """

    def __init__(self, engine, count: int, *, images: int):
        self.engine = engine
        self.count = max(1, min(count, images))
        self.lanes: list = []
        self.pool: ThreadPoolExecutor | None = None

    def analyse(self, decoded: list[np.ndarray]) -> list[list | WorkbenchError]:
        """Faces per image (most prominent first) or the WorkbenchError that image raised, in order."""
        if self.count < 2 or len(decoded) < 2:
            return _analyse_part(self.engine, decoded)
        if self.pool is None:
            self.lanes = self.engine.lanes(self.count)
            self.pool = ThreadPoolExecutor(max_workers=self.count, thread_name_prefix="enrol-lane")
        size = math.ceil(len(decoded) / len(self.lanes))
        parts = [decoded[start : start + size] for start in range(0, len(decoded), size)]
        futures = [self.pool.submit(_analyse_part, lane, part) for lane, part in zip(self.lanes, parts)]
        return [result for future in futures for result in future.result()]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _analyse_part(engine, decoded: list[np.ndarray]) -> list[list | WorkbenchError]:
    """Faces per decoded image, batched; if the batch fails, image by image so one bad image costs
    only itself (its WorkbenchError takes its place)."""
    # Only the most prominent face is enrolled: detection stops once finer levels cannot find a
    # more prominent one (one canvas for a portrait), so faces_found counts the faces of the
    # levels searched (small background faces may be left uncounted).
    try:
        return engine.analyse_many(decoded, prominent_only=True)
    except WorkbenchError:
        pass
    results: list[list | WorkbenchError] = []
    for rgb in decoded:
        try:
            results.append(engine.analyse_many([rgb], prominent_only=True)[0])
        except WorkbenchError as exc:
            results.append(exc)
    return results


def _analyse(analysis: _Lanes, decoded: list[np.ndarray], readable: list[_Read], report, summary) -> list[list | None]:
    """Faces per decoded image; an image the engine refused is recorded as unreadable (None)."""
    if not decoded:
        return []
    results: list[list | None] = []
    for read, result in zip(readable, analysis.analyse(decoded)):
        if isinstance(result, WorkbenchError):
            _record(summary, report, Outcome(read.item.ref, read.item.subject.subject_id, str(read.item.path), "unreadable", str(result)))
            results.append(None)
        else:
            results.append(result)
    return results
