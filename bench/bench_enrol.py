"""Benchmark enrolment: custody images per second, the previous method and the new path side by side.

    .venv/bin/python bench/bench_enrol.py [--quick] [--min-face 20] [--repeat 1]

Data: the 221 ISS astronaut portraits of ``../shared/data/faces/iss_portraits`` (or
``$WORKBENCH_SHARED_DATA/faces/iss_portraits``), studio portraits at 480 px on the long side,
the closest thing in the shared data to custody photos. They are laid out as a custody folder
(one sub-folder per subject, copies) in a temporary directory and enrolled with
:func:`workbench.gallery.enrol.enrol`, the function behind ``workbench gallery enrol DIR``.
``--quick`` takes the first 48 portraits. Without the shared data the benchmark prints why and
exits 0.

Methods, each run in a fresh process of its own (new workspace, new engine, new gallery), one
after the other for each ``min_face_px`` (``--repeat`` rounds, the median run shown):

* ``previous``: the engine's dense pyramid (``FaceEngine(..., schedule="dense")``, every level
  on every image) and enrolment in one thread (``read_ahead=0``: read, hash, decode, analyse,
  store, one batch after the other), as enrolment ran before issue 12;
* ``planned``: the engine's planned schedule (one canvas for the whole image first, finer
  levels only when needed), still in one thread: what the schedule alone gives;
* ``planned + read-ahead``: files also read, hashed and decoded a batch ahead in background
  threads while the models run, still one analysis lane (the default before analysis lanes);
* ``+ PReLU rewrite``: the same with SFace's PReLUs run as the same function in faster
  operations (:mod:`workbench.models.graph`; the three methods above run the graph as stored);
* ``new``: the defaults: planned schedule, read-ahead, the rewrite, and each batch analysed in
  parts side by side on one-thread engines, one lane per core (:meth:`FaceEngine.lanes`).

An engine without the ``schedule`` argument (before the planned schedule lands) runs its one
schedule in all of them, labelled ``engine default``; an ``enrol()`` without ``lanes`` runs
its one way.

Per run: images per second = analysed images / wall seconds of ``enrol()`` (read, sha256,
decode, detect, align, embed, quality, store in SQLite with the audit entry), the engine loaded
and warmed up on one portrait before the clock starts; detector canvases (images fed to the
detector's ``InferenceSession.run``) per image; crops per recogniser call (the embedding batch);
seconds inside the detector's and the recogniser's ``run`` (the models' own cost; the rest is
ours: decoding, canvases, alignment, quality, database); CPU time of the process per image (all
threads: on an idle machine 2 cores / CPU per image bounds the rate); the re-run (the same folder
again: every image skipped by sha256 and pack, without decoding); peak resident memory (VmHWM,
see :mod:`peak_memory`).

Same faces: every subject's stored face in a run against the ``previous`` run's: cosine of the
two embeddings (min and median; how many at or below 0.999), and how many images enrolled a
different face (box IoU below 0.5) or enrolled in one run and not the other.

Figures, never assertions: wall time depends on the machine and its load (printed beside them).
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from peak_memory import peak_source, run_fresh

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
PORTRAITS = SHARED / "faces" / "iss_portraits"
QUICK_PORTRAITS = 48
#: (label, engine schedule, enrolment read-ahead threads, analysis lanes, PReLU rewrite; None = the default)
METHODS = (
    ("previous", "dense", 0, 1, False),
    ("planned", "planned", 0, 1, False),
    ("planned + read-ahead", "planned", None, 1, False),
    ("+ PReLU rewrite", "planned", None, 1, True),
    ("new", "planned", None, None, True),
)
SAME_FACE_IOU = 0.5
SAME_EMBEDDING_COSINE = 0.999


class OrtTimer:
    """Wall seconds, calls and images spent inside ``onnxruntime.InferenceSession.run`` in this
    process, per session.

    Wraps the method on the class, so every session is counted; restores it on exit. Images
    are the first dimension of the first input of each call (canvases for a detector, crops
    for a recogniser).
    """

    def __init__(self) -> None:
        self.by_session: dict[int, dict] = {}

    def of(self, session) -> dict:
        """{"seconds", "calls", "images"} of one session (zeros if it never ran)."""
        return self.by_session.get(id(session), {"seconds": 0.0, "calls": 0, "images": 0})

    def total(self, sessions) -> dict:
        """:meth:`of` summed over several sessions (an engine and its lanes)."""
        tallies = [self.of(s) for s in sessions]
        return {key: sum(t[key] for t in tallies) for key in ("seconds", "calls", "images")}

    def __enter__(self) -> OrtTimer:
        import onnxruntime

        self._cls = onnxruntime.InferenceSession
        self._had_own = "run" in vars(self._cls)
        self._original = self._cls.run
        original, by_session = self._original, self.by_session

        def run(session, output_names, input_feed, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(session, output_names, input_feed, *args, **kwargs)
            finally:
                tally = by_session.setdefault(id(session), {"seconds": 0.0, "calls": 0, "images": 0})
                tally["seconds"] += time.perf_counter() - start
                tally["calls"] += 1
                first = next(iter(input_feed.values()), None)
                tally["images"] += int(first.shape[0]) if getattr(first, "ndim", 0) else 1

        self._cls.run = run
        return self

    def __exit__(self, *exc) -> None:
        if self._had_own:
            self._cls.run = self._original
        else:
            del self._cls.run


def custody_folder(target: Path, limit: int | None = None) -> Path:
    """One sub-folder per portrait (subject id = file stem) holding a copy of it (11 MB for all 221).

    Copies, not symbolic links: enrolment does not follow links unless asked, and a custody
    folder holds files.
    """
    for portrait in sorted(PORTRAITS.glob("*.jpg"))[:limit]:
        (target / portrait.stem).mkdir(parents=True)
        shutil.copyfile(portrait, target / portrait.stem / portrait.name)
    return target


def engine_takes_schedule() -> bool:
    """True when FaceEngine accepts ``schedule=`` ("planned" or "dense")."""
    from workbench.engine import FaceEngine

    return "schedule" in inspect.signature(FaceEngine.__init__).parameters


def new_engine(settings, schedule: str, rewrite: bool = True):
    """The engine for ``settings`` with ``schedule`` and ``rewrite`` where the engine takes them."""
    from workbench.engine import FaceEngine
    from workbench.models.packs import read_pack

    pack = read_pack(settings.models_dir, settings.pack)
    takes = inspect.signature(FaceEngine.__init__).parameters
    options = {"schedule": schedule} if "schedule" in takes else {}
    if "rewrite" in takes:
        options["rewrite"] = rewrite
    return FaceEngine(pack, settings, **options)


def stored_faces(gallery) -> dict[str, tuple[tuple[float, ...], bytes]]:
    """subject id -> (box x1, y1, x2, y2 in pixels, embedding bytes) of its enrolled face."""
    rows = gallery.conn.execute("SELECT subject_id, x1, y1, x2, y2, embedding FROM faces ORDER BY face_id").fetchall()
    return {r[0]: ((r[1], r[2], r[3], r[4]), bytes(r[5])) for r in rows}


def measure(
    custody: str, models: str, workdir: str, min_face_px: int, schedule: str, read_ahead: int | None, lanes: int | None, rewrite: bool
) -> dict:
    """One method, run in its own process: first enrolment (timed, models timed), re-run.

    Returns counts, seconds, images per second, detector canvases and model seconds, and the
    stored faces (for the comparison of methods).
    """
    from workbench.config import Settings
    from workbench.gallery.enrol import READ_AHEAD_THREADS, enrol, items_from_folder
    from workbench.gallery.store import Gallery

    home = Path(tempfile.mkdtemp(prefix=f"enrol-{min_face_px}-", dir=workdir))
    (home / "models").symlink_to(models, target_is_directory=True)
    settings = Settings(home=home, min_face_px=min_face_px, user="bench-enrol")
    engine = new_engine(settings, schedule, rewrite)
    items, problems = items_from_folder(Path(custody))
    engine.analyse(items[0].path)  # warm-up: onnxruntime allocates on the first calls
    threads = READ_AHEAD_THREADS if read_ahead is None else read_ahead
    options = {"read_ahead": threads}
    if "lanes" in inspect.signature(enrol).parameters:
        from workbench.gallery.enrol import default_analysis_lanes

        options["lanes"] = default_analysis_lanes() if lanes is None else lanes
    with Gallery.open(settings) as gallery:
        cpu_started = time.process_time()
        with OrtTimer() as ort:
            first = enrol(gallery, engine, items, problems=problems, source=custody, **options)
        cpu_seconds = time.process_time() - cpu_started
        again = enrol(gallery, engine, items, problems=problems, source=custody, **options)
        faces = stored_faces(gallery)
        plans = common_plan(engine, gallery)
    engines = [engine, *getattr(engine, "lanes_made", [])]
    detector = ort.total(e.detector.session for e in engines)
    recogniser = ort.total(e.recogniser.session for e in engines)
    return {
        "min_face_px": min_face_px,
        "schedule": schedule if engine_takes_schedule() else "engine default",
        "read_ahead": threads,
        "lanes": options.get("lanes", 1),
        "rewrite": "yes" if getattr(engine, "rewrite", False) else "no",
        "images": len(items),
        "enrolled": first.counts["enrolled"],
        "refused": {k: v for k, v in first.counts.items() if k not in ("enrolled", "skipped") and v},
        "several_faces": first.several_faces,
        "analysed": first.analysed,
        "seconds": first.seconds,
        "images_per_s": first.images_per_s,
        "canvases": detector["images"],
        "detector_s": detector["seconds"],
        "recogniser_s": recogniser["seconds"],
        "crops": recogniser["images"],
        "recogniser_calls": recogniser["calls"],
        "cpu_seconds": cpu_seconds,
        "rerun_skipped": again.counts["skipped"],
        "rerun_seconds": again.seconds,
        "faces": faces,
        "plan": plans,
    }


def common_plan(engine, gallery) -> str:
    """The detection levels most images got, as their scales ("1.00+1.60": two levels), and how
    many images got it; "n/a" for an engine without ``plan``."""
    if not hasattr(engine, "plan"):
        return "n/a"
    sizes = gallery.conn.execute("SELECT height_px, width_px FROM custody_images").fetchall()
    plans = Counter("+".join(f"{level.scale:.2f}" for level in engine.plan(h, w)) for h, w in sizes)
    if not plans:
        return "n/a"
    plan, count = plans.most_common(1)[0]
    return f"{plan} ({count} of {len(sizes)})"


def box_iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def compare_faces(run: dict, reference: dict) -> dict:
    """How the faces a run enrolled compare with the reference run's, subject by subject."""
    cosines, other_face = [], 0
    mine, theirs = run["faces"], reference["faces"]
    for subject in sorted(mine.keys() & theirs.keys()):
        (box, emb), (ref_box, ref_emb) = mine[subject], theirs[subject]
        cosines.append(float(np.dot(np.frombuffer(emb, np.float32), np.frombuffer(ref_emb, np.float32))))
        other_face += box_iou(box, ref_box) < SAME_FACE_IOU
    return {
        "compared": len(cosines),
        "only_one_run": len(mine.keys() ^ theirs.keys()),
        "other_face": other_face,
        "min_cosine": min(cosines) if cosines else float("nan"),
        "median_cosine": statistics.median(cosines) if cosines else float("nan"),
        "below": sum(c <= SAME_EMBEDDING_COSINE for c in cosines),
    }


def median_run(runs: list[dict]) -> dict:
    median = statistics.median(r["images_per_s"] for r in runs)
    return min(runs, key=lambda r: abs(r["images_per_s"] - median))


def print_tables(rows: list[tuple[str, dict]], command: str, images: int) -> None:
    print(f"\nEnrolment of {images} ISS portraits (480 px), opencv-zoo pack, {os.cpu_count()} cores: `{command}`\n")
    print("| min_face_px | method | schedule | read-ahead threads | lanes | PReLU rewrite | enrolled | refused | images/s | x previous "
          "| canvases/image "
          "| scales searched | crops/recogniser call | detector s | recogniser s | rest s | wall s | CPU ms/image | re-run s "
          "| peak RSS | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    baseline = {}
    for label, r in rows:
        baseline.setdefault(r["min_face_px"], r)
        base = baseline[r["min_face_px"]]
        analysed = max(r["analysed"], 1)
        rest = r["seconds"] - r["detector_s"] - r["recogniser_s"]
        refused = ", ".join(f"{k} {v}" for k, v in r["refused"].items()) or "0"
        print(f"| {r['min_face_px']} | {label} | {r['schedule']} | {r['read_ahead']} | {r['lanes']} | {r['rewrite']} | "
              f"{r['enrolled']} | {refused} | "
              f"{r['images_per_s']:.1f} | x{r['images_per_s'] / base['images_per_s']:.2f} | {r['canvases'] / analysed:.2f} | "
              f"{r['plan']} | {r['crops'] / max(r['recogniser_calls'], 1):.1f} | {r['detector_s']:.1f} | {r['recogniser_s']:.1f} | "
              f"{rest:.1f} | {r['seconds']:.1f} | {1000 * r['cpu_seconds'] / analysed:.0f} | {r['rerun_seconds']:.3f} | "
              f"{r['peak_rss_mb']:.0f} MB | {r['load']:.1f} |")
    print("\nSame faces as the previous method (dense pyramid), subject by subject:\n")
    print("| min_face_px | method | images compared | enrolled in one run only | other face (box IoU < 0.5) "
          f"| min cosine | median cosine | cosine <= {SAME_EMBEDDING_COSINE} |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows:
        base = baseline[r["min_face_px"]]
        if r is base:
            continue
        c = compare_faces(r, base)
        print(f"| {r['min_face_px']} | {label} | {c['compared']} | {c['only_one_run']} | {c['other_face']} | "
              f"{c['min_cosine']:.6f} | {c['median_cosine']:.6f} | {c['below']} |")
    print("\nimages/s: analysed images / wall seconds of enrol(), engine loaded and warmed up first; canvases: images "
          "fed to the detector; scales searched: the detection levels (image scale of each) most images got; detector s, "
          "recogniser s: seconds inside their InferenceSession.run, summed over the lanes (so with lanes they can add up to "
          "more than the wall time; read-ahead threads run beside them); rest: wall time minus both (negative with lanes); "
          "CPU ms/image: CPU time of the process (all threads) during enrol() per analysed "
          "image, so 2 cores / CPU per image bounds the rate on an idle machine; re-run: the same folder again (skipped "
          "by sha256 and pack). Load: 1-minute load average after the run.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"first {QUICK_PORTRAITS} portraits only (under 2 minutes)")
    parser.add_argument("--min-face", default="20", help="min_face_px values, comma-separated (default 20, the setting's default)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three methods; the median run is shown (default 1)")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/bench_enrol.py", *sys.argv[1:]])
    if not PORTRAITS.is_dir():
        print(f"skipped: shared data not found at {SHARED} (set WORKBENCH_SHARED_DATA); nothing measured")
        return 0
    from workbench.models import ensure_default_pack

    sizes = [int(v) for v in args.min_face.split(",")]
    schedules = "dense and planned schedules" if engine_takes_schedule() else "the engine has no schedule argument yet: one schedule"
    print(f"bench_enrol: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} (1 min); {schedules}; "
          f"each run in a fresh process, peak RSS from {peak_source()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-enrol-") as tmp:
        models = Path(tmp) / "models"
        ensure_default_pack(models)
        custody = custody_folder(Path(tmp) / "custody", QUICK_PORTRAITS if args.quick else None)
        for min_face in sizes:
            runs = {label: [] for label, *_ in METHODS}
            for _ in range(max(1, args.repeat)):  # methods alternate: a change of load hits all of them
                for label, schedule, read_ahead, lanes, rewrite in METHODS:
                    result, peak = run_fresh(measure, str(custody), str(models), tmp, min_face, schedule, read_ahead, lanes, rewrite)
                    result["peak_rss_mb"], result["load"] = peak, os.getloadavg()[0]
                    runs[label].append(result)
                    print(f"  min_face_px {min_face} {label}: {result['images_per_s']:.1f} images/s, "
                          f"{result['canvases'] / max(result['analysed'], 1):.2f} canvases/image, load {result['load']:.2f}", flush=True)
            rows.extend((label, median_run(runs[label])) for label, *_ in METHODS)
    print_tables(rows, command, rows[0][1]["images"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
