"""Benchmark the FaceEngine against the bare onnxruntime calls it wraps.

    .venv/bin/python bench/bench_engine.py [--repeat 5] [--batch 32]

Prints, for the default pack:

* embedding: aligned crops per second through ``FaceEngine.embed_aligned`` (preprocess,
  batched run, L2 normalisation) beside the raw ``session.run`` on the same tensor;
* detection: ms per image at 640x480, 1920x1080 and 4000x3000 through ``FaceEngine.detect_rows``
  (pyramid, tiling, decode, NMS) at ``min_face_px`` 20 (the default) and 80, beside the raw
  detector call on one 640x640 canvas times the number of canvases the pyramid needs, so the
  ratio shows our overhead, not the cost of searching more canvases;
* end to end: faces per second through ``FaceEngine.analyse`` on InsightFace's t1.jpg;
* peak resident memory of each scenario: each runs in its own fresh process (``--child``) and
  reports that process's own high-water mark (VmHWM, see :mod:`peak_memory`; ru_maxrss would
  carry over this parent's peak, which includes converting the models).

Figures, never assertions: wall time depends on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from peak_memory import peak_rss_mb, peak_source

SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920), "4000x3000": (3000, 4000)}


def _timed(func, repeat: int) -> float:
    func()  # warm-up: first calls allocate
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best.append(time.perf_counter() - start)
    return float(np.median(best))


def _engine(home: str, min_face_px: int):
    from workbench.config import Settings
    from workbench.engine import FaceEngine

    return FaceEngine.from_settings(Settings(home=Path(home), min_face_px=min_face_px))


def scenario_embed(home: str, repeat: int, batch: int) -> dict:
    from workbench.samples import sample_image

    engine = _engine(home, 20)
    crops = np.stack([f.aligned for f in engine.analyse(sample_image("t1"))])
    crops = np.concatenate([crops] * (batch // len(crops) + 1))[:batch]
    tensor = engine.recogniser.preprocessing.to_tensor(crops)
    ours = _timed(lambda: engine.embed_aligned(crops), repeat)
    raw = _timed(lambda: engine.recogniser.raw_embed(tensor), repeat)
    single = _timed(lambda: [engine.embed_aligned(crops[i : i + 1]) for i in range(len(crops))], max(1, repeat // 2))
    return {"faces_per_s": batch / ours, "raw_faces_per_s": batch / raw, "overhead": ours / raw, "unbatched_faces_per_s": batch / single}


def scenario_detect(home: str, repeat: int, size: str, min_face_px: int) -> dict:
    import cv2

    from workbench.engine import pyramid_scales, tile_origins
    from workbench.images import load_image
    from workbench.samples import sample_image

    engine = _engine(home, min_face_px)
    height, width = SIZES[size]
    image = cv2.resize(load_image(sample_image("t1")), (width, height), interpolation=cv2.INTER_AREA)
    canvases = sum(
        len(tile_origins(round(height * s))) * len(tile_origins(round(width * s)))
        for s in pyramid_scales(height, width, min_face_px=min_face_px)
    )
    ours = _timed(lambda: engine.detect_rows(image), repeat)
    canvas = np.zeros((1, 3, 640, 640), np.float32)
    raw = _timed(lambda: engine.detector.raw_detect(canvas), repeat)
    faces = len(engine.detect_rows(image))
    return {"ms": ours * 1000, "canvases": canvases, "raw_ms_per_canvas": raw * 1000, "overhead": ours / (raw * canvases), "faces": faces}


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
        result = scenario_detect(home, repeat, rest[0], int(rest[1]))
    else:
        result = scenario_analyse(home, repeat)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--home", help="workspace whose models/ holds the default pack (default: a temporary one)")
    args = parser.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="bench-engine-")
    from workbench.models import ensure_default_pack

    ensure_default_pack(Path(home) / "models")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min); "
          f"peak RSS per scenario from its own process ({peak_source()})")

    e = _run_isolated(["embed", home, str(args.repeat), str(args.batch)])
    print(f"\nembedding (SFace, batch {args.batch}):")
    print(f"  FaceEngine.embed_aligned {e['faces_per_s']:8.0f} faces/s   raw session.run {e['raw_faces_per_s']:8.0f} faces/s   "
          f"overhead x{e['overhead']:.2f}   one at a time {e['unbatched_faces_per_s']:.0f} faces/s   "
          f"peak {e['peak_rss_mb']:.0f} MB")

    print("\ndetection (YuNet), ms per image:")
    print(f"  {'image':<10} {'min face':>8} {'canvases':>8} {'ours ms':>9} {'raw ms x canvases':>18} {'overhead':>9} "
          f"{'faces':>6} {'peak MB':>8}")
    for size in SIZES:
        for min_face in (20, 80):
            d = _run_isolated(["detect", home, str(args.repeat), size, str(min_face)])
            overhead = f"x{d['overhead']:.2f}"
            print(f"  {size:<10} {min_face:>6}px {d['canvases']:>8} {d['ms']:>9.1f} {d['raw_ms_per_canvas'] * d['canvases']:>18.1f} "
                  f"{overhead:>9} {d['faces']:>6} {d['peak_rss_mb']:>8.0f}")

    a = _run_isolated(["analyse", home, str(args.repeat)])
    print(f"\nend to end (t1.jpg 1280x886, {a['faces']} faces): {a['ms_per_image']:.0f} ms/image, {a['faces_per_s']:.1f} faces/s, "
          f"peak {a['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
