"""Benchmark the FaceEngine against the bare onnxruntime calls it wraps.

    .venv/bin/python bench/bench_engine.py [--quick] [--repeat 5] [--batch 32]

Prints, for the default pack (and the detection table also for SCRFD-500M + MobileFaceNet from
``../shared/data/models`` when present):

* embedding: aligned crops per second through ``FaceEngine.embed_aligned`` (preprocess,
  batched run, L2 normalisation) beside the raw ``session.run`` on the same tensor, and the raw
  call of the graph exactly as stored (``rewrite=False``: SFace's PReLUs not rewritten, see
  :mod:`workbench.models.graph`);
* detection: ms per image at 640x480, 1920x1080 and 4000x3000 through ``FaceEngine.detect_rows``
  (schedule, resizing, padding, blob, decode, NMS, merging) at ``min_face_px`` 20 (the
  default) and 80, for the "planned" schedule and the previous "dense" one side by side. The
  raw-call baseline is the time the engine itself spent inside the bare model calls
  (``session.run``) on the canvases it actually ran, read from ``engine.detection_stats``
  (not recomputed here), so the ratio engine / raw is the engine's own overhead;
* end to end: faces per second through ``FaceEngine.analyse`` on InsightFace's t1.jpg;
* peak resident memory of each scenario: each runs in its own fresh process (``--child``) and
  reports that process's own high-water mark (VmHWM, see :mod:`peak_memory`; ru_maxrss would
  carry over this parent's peak, which includes converting the models).

``--quick``: the default pack, 640x480 and 1920x1080 only, 2 repeats (under 2 minutes).

Figures, never assertions: wall time depends on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from peak_memory import peak_rss_mb, peak_source

SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920), "4000x3000": (3000, 4000)}
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SCRFD_FILES = ("scrfd_500m_bnkps.onnx", "mobilefacenet_128d.onnx")
PACKS = {"opencv-zoo": "YuNet", "scrfd-mfn": "SCRFD-500M"}
#: the dense schedule runs up to 143 canvases per 4000x3000 image: stop repeating after this long.
DETECT_BUDGET_S = 20.0


def _timed(func, repeat: int) -> float:
    func()  # warm-up: first calls allocate
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best.append(time.perf_counter() - start)
    return float(np.median(best))


def _engine(home: str, min_face_px: int, pack: str = "opencv-zoo", schedule: str = "planned"):
    from workbench.config import Settings
    from workbench.engine import FaceEngine

    return FaceEngine.from_settings(Settings(home=Path(home), min_face_px=min_face_px, pack=pack), schedule=schedule)


def _import_scrfd_pack(home: Path) -> bool:
    """Import SCRFD-500M + MobileFaceNet from the shared models as pack "scrfd-mfn"; False if absent."""
    from workbench.models import Preprocessing, import_pack

    if not all((SHARED / "models" / name).is_file() for name in SCRFD_FILES):
        return False
    if not (home / "models" / "scrfd-mfn").is_dir():
        source = home / "scrfd-src"
        source.mkdir(exist_ok=True)
        for name in SCRFD_FILES:
            shutil.copy(SHARED / "models" / name, source)
        import_pack(home / "models", source, name="scrfd-mfn", preprocessing=Preprocessing("RGB", 127.5, 128.0))
    return True


def scenario_embed(home: str, repeat: int, batch: int) -> dict:
    from workbench.samples import sample_image

    engine = _engine(home, 20)
    crops = np.stack([f.aligned for f in engine.analyse(sample_image("t1"))])
    crops = np.concatenate([crops] * (batch // len(crops) + 1))[:batch]
    tensor = engine.recogniser.preprocessing.to_tensor(crops)
    ours = _timed(lambda: engine.embed_aligned(crops), repeat)
    raw = _timed(lambda: engine.recogniser.raw_embed(tensor), repeat)
    single = _timed(lambda: [engine.embed_aligned(crops[i : i + 1]) for i in range(len(crops))], max(1, repeat // 2))
    # the graph exactly as stored (PReLUs not rewritten, see workbench.models.graph): what the rewrite gains
    from workbench.engine import FaceEngine

    stored = FaceEngine(engine.pack, engine.settings, rewrite=False).recogniser
    stored_raw = _timed(lambda: stored.raw_embed(tensor), repeat)
    return {
        "faces_per_s": batch / ours,
        "raw_faces_per_s": batch / raw,
        "overhead": ours / raw,
        "unbatched_faces_per_s": batch / single,
        "stored_graph_raw_faces_per_s": batch / stored_raw,
    }


def scenario_detect(home: str, repeat: int, size: str, min_face_px: int, pack: str, schedule: str) -> dict:
    """detect_rows on t1.jpg resized to ``size``: per image, engine ms and raw-call ms from the engine's own stats."""
    import cv2

    from workbench.engine import DetectionStats
    from workbench.images import load_image
    from workbench.samples import sample_image

    engine = _engine(home, min_face_px, pack, schedule)
    height, width = SIZES[size]
    image = cv2.resize(load_image(sample_image("t1")), (width, height), interpolation=cv2.INTER_AREA)
    faces = len(engine.detect_rows(image))  # warm-up: first calls allocate
    engine.detection_stats = DetectionStats()
    started = time.perf_counter()
    for _ in range(repeat):
        engine.detect_rows(image)
        if time.perf_counter() - started > DETECT_BUDGET_S:
            break
    stats = engine.detection_stats
    peak = peak_rss_mb()  # before the captured canvases below add theirs
    replay_ms = _replayed_raw_ms(engine, image, repeat)
    return {
        "ms": 1000 * stats.total_seconds / stats.images,
        "raw_ms": 1000 * stats.model_seconds / stats.images,
        "overhead": stats.overhead,
        "replay_raw_ms": replay_ms,
        "replay_overhead": 1000 * stats.total_seconds / stats.images / replay_ms,
        "peak_rss_mb": peak,
        "canvases": stats.canvases / stats.images,
        "megapixels": stats.canvas_pixels / stats.images / 1e6,
        "runs": stats.images,
        "faces": faces,
    }


def _replayed_raw_ms(engine, image, repeat: int) -> float:
    """ms per image of the bare model calls alone, replayed on the very input tensors the engine
    passed to them for ``image`` (captured from its calls, not recomputed), each its own array as
    a caller holding prepared canvases would pass them."""
    detector = engine.detector
    captured = []
    bare = detector.raw_detect
    detector.raw_detect = lambda tensor: (captured.append(tensor.copy()), bare(tensor))[1]
    try:
        engine.detect_rows(image)
    finally:
        del detector.raw_detect  # the instance attribute: the class's method again
    rounds = []
    for _ in range(max(2, repeat)):
        started = time.perf_counter()
        for tensor in captured:
            bare(tensor)
        rounds.append(time.perf_counter() - started)
        if sum(rounds) > DETECT_BUDGET_S:
            break
    return 1000 * float(np.median(rounds))


def scenario_analyse(home: str, repeat: int) -> dict:
    from workbench.samples import sample_image

    engine = _engine(home, 20)
    path = sample_image("t1")
    seconds = _timed(lambda: engine.analyse(path), repeat)
    faces = len(engine.analyse(path))
    return {"faces_per_s": faces / seconds, "ms_per_image": seconds * 1000, "faces": faces}


def _run_isolated(args: list[str]) -> dict:
    """One scenario in a fresh interpreter (``--child``); its JSON result, with its own peak RSS in MB."""
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(argv: list[str]) -> None:
    kind, home, repeat, *rest = argv
    repeat = int(repeat)
    if kind == "embed":
        result = scenario_embed(home, repeat, int(rest[0]))
    elif kind == "detect":
        result = scenario_detect(home, repeat, rest[0], int(rest[1]), rest[2], rest[3])
    else:
        result = scenario_analyse(home, repeat)
    result.setdefault("peak_rss_mb", peak_rss_mb())
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="default pack, two image sizes, 2 repeats (under 2 minutes)")
    parser.add_argument("--home", help="workspace whose models/ holds the default pack (default: a temporary one)")
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    home = args.home or tempfile.mkdtemp(prefix="bench-engine-")
    from workbench.models import ensure_default_pack

    ensure_default_pack(Path(home) / "models")
    packs = ["opencv-zoo"] + (["scrfd-mfn"] if not args.quick and _import_scrfd_pack(Path(home)) else [])
    print(f"command: .venv/bin/python bench/bench_engine.py{' --quick' if args.quick else ''} --repeat {repeat} --batch {args.batch}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min); "
          f"peak RSS per scenario from its own process ({peak_source()})")

    e = _run_isolated(["embed", home, str(repeat), str(args.batch)])
    print(f"\nembedding (SFace, batch {args.batch}):")
    print(f"  FaceEngine.embed_aligned {e['faces_per_s']:8.0f} faces/s   raw session.run {e['raw_faces_per_s']:8.0f} faces/s   "
          f"overhead x{e['overhead']:.2f}   one at a time {e['unbatched_faces_per_s']:.0f} faces/s   "
          f"peak {e['peak_rss_mb']:.0f} MB")
    print(f"  the graph as stored (PReLUs not rewritten): raw session.run {e['stored_graph_raw_faces_per_s']:8.0f} faces/s; "
          f"the rewrite runs x{e['raw_faces_per_s'] / e['stored_graph_raw_faces_per_s']:.2f} as fast")

    print("\ndetection, ms per image (t1.jpg resized); raw = time inside session.run on the canvases the engine ran "
          "(engine.detection_stats), ratio = engine / raw:\n")
    print("replayed = the same bare calls again, on copies of the input tensors the engine passed them (captured, each its own "
          "array), ratio = engine / replayed: the input then comes from memory, as for any caller with prepared canvases, "
          "instead of from the engine's fill just before\n")
    print("| detector | image | min face | schedule | canvases | canvas Mpx | engine ms | raw-call ms | ratio | replayed ms | ratio "
          "| faces | peak MB |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sizes = list(SIZES)[:2] if args.quick else list(SIZES)
    for pack in packs:
        for size in sizes:
            for min_face in (20, 80):
                for schedule in ("planned", "dense"):
                    d = _run_isolated(["detect", home, str(repeat), size, str(min_face), pack, schedule])
                    print(f"| {PACKS[pack]} | {size} | {min_face} px | {schedule} | {d['canvases']:.0f} | {d['megapixels']:.2f} | "
                          f"{d['ms']:.1f} | {d['raw_ms']:.1f} | x{d['overhead']:.3f} | "
                          f"{d['replay_raw_ms']:.1f} | x{d['replay_overhead']:.3f} | {d['faces']} | {d['peak_rss_mb']:.0f} |")
    print(f"\nload average after the detection table {os.getloadavg()[0]:.2f} (1 min)")

    a = _run_isolated(["analyse", home, str(repeat)])
    print(f"\nend to end (t1.jpg 1280x886, {a['faces']} faces): {a['ms_per_image']:.0f} ms/image, {a['faces_per_s']:.1f} faces/s, "
          f"peak {a['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
