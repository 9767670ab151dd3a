"""The smallest face each detector finds reliably on its own 640x640 canvas.

    .venv/bin/python bench/bench_min_face.py [--quick]

Real faces are shrunk so that the detector's own box round each is ``w`` px wide (w = 8, 10,
... 40) and pasted, with their surroundings (0.6 box widths each side), into grey 640x640
canvases at sub-stride offsets (0..31 px, so every grid alignment is tried); the bare detector
(``detector.detect``, the pack's default threshold) runs on each canvas. A face counts as found
when a detection overlaps its expected box at IoU >= 0.3. Faces: InsightFace's t1.jpg (six),
scikit-image's astronaut, and from ``../shared/data/faces`` the ISS portraits, fr_examples
train and test, iss_onboard and compreface_samples: every face whose box is at least 60 px wide
in its photo (so the shrinking is clean).

Detectors: YuNet (the default pack "opencv-zoo") and SCRFD-500M (``scrfd_500m_bnkps.onnx`` with
``mobilefacenet_128d.onnx`` imported as an InsightFace-style pack). The result sets each
detector's ``reliable_face_px`` (workbench/models/detectors.py), which the engine's planned
schedule uses to decide which pyramid levels an image needs.

Figures, never assertions.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
CANVAS = 640
MARGIN = 0.6
#: shortest box side (source px) of a face used: shrinking from at least 60 px keeps it clean.
MIN_SOURCE_FACE_PX = 60
MATCH_IOU = 0.3
#: recall this close to the recall at the largest width counts as the detector's best.
PLATEAU_TOLERANCE = 0.01
BACKGROUND = 90


def engines(home: Path) -> dict:
    """{"YuNet (opencv-zoo)": engine, "SCRFD-500M": engine} (SCRFD only when the shared models exist)."""
    from workbench.config import Settings
    from workbench.engine import FaceEngine
    from workbench.models import Preprocessing, ensure_default_pack, import_pack

    ensure_default_pack(home / "models")
    found = {"YuNet (opencv-zoo)": FaceEngine.from_settings(Settings(home=home))}
    models = SHARED / "models"
    if (models / "scrfd_500m_bnkps.onnx").is_file():
        source = home / "scrfd-src"
        source.mkdir()
        for name in ("scrfd_500m_bnkps.onnx", "mobilefacenet_128d.onnx"):
            shutil.copy(models / name, source)
        import_pack(home / "models", source, name="scrfd-mfn", preprocessing=Preprocessing("RGB", 127.5, 128.0))
        found["SCRFD-500M"] = FaceEngine.from_settings(Settings(home=home, pack="scrfd-mfn"))
    return found


def source_images(quick: bool) -> list[Path]:
    """Photos the faces come from: the two bundled samples, then the shared folders."""
    from workbench.samples import sample_image

    paths = [sample_image("t1"), sample_image("astronaut")]
    faces = SHARED / "faces"
    if faces.is_dir():
        portraits = sorted((faces / "iss_portraits").glob("*.jpg"))
        paths += portraits[:12] if quick else portraits[:120]
        if not quick:
            for folder in ("fr_examples", "iss_onboard", "compreface_samples"):
                paths += sorted(p for p in (faces / folder).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return paths


def face_crops(engine, paths: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(crop RGB, box xyxy inside the crop) of every face of at least MIN_SOURCE_FACE_PX the engine finds."""
    crops = []
    for path in paths:
        rgb = engine.load(path)
        for row in engine.detect_rows(rgb):
            x1, y1, x2, y2 = (float(v) for v in row[:4])
            w, h = x2 - x1, y2 - y1
            if min(w, h) < MIN_SOURCE_FACE_PX:
                continue
            left, top = int(max(0, x1 - MARGIN * w)), int(max(0, y1 - MARGIN * h))
            right, bottom = int(min(rgb.shape[1], x2 + MARGIN * w)), int(min(rgb.shape[0], y2 + MARGIN * h))
            crops.append((rgb[top:bottom, left:right], np.array([x1 - left, y1 - top, x2 - left, y2 - top])))
    return crops


def canvases_at_width(crops, width_px: int):
    """Yield (canvas RGB, expected boxes (M, 4)) holding every crop shrunk so its box is ``width_px`` wide."""
    shrunk = []
    for crop, box in crops:
        scale = width_px / (box[2] - box[0])
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        shrunk.append((small, box * np.array([size[0] / crop.shape[1], size[1] / crop.shape[0]] * 2)))
    cell = max(max(s.shape[0], s.shape[1]) for s, _ in shrunk) + 36  # room for a 0..31 px offset
    per_row = CANVAS // cell
    per_canvas = per_row * per_row
    for start in range(0, len(shrunk), per_canvas):
        canvas = np.full((CANVAS, CANVAS, 3), BACKGROUND, np.uint8)
        boxes = []
        for k, (small, box) in enumerate(shrunk[start : start + per_canvas]):
            offset = (7 * (start + k)) % 32  # sub-stride shifts: every alignment with the 8/16/32 grids
            y, x = (k // per_row) * cell + offset, (k % per_row) * cell + (offset * 3) % 32
            canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
            boxes.append(box + np.array([x, y, x, y]))
        yield canvas, np.array(boxes)


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(boxes[:, 0], box[0]), np.maximum(boxes[:, 1], box[1])
    x2, y2 = np.minimum(boxes[:, 2], box[2]), np.minimum(boxes[:, 3], box[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + (box[2] - box[0]) * (box[3] - box[1]) - inter)


def found_at(engine, crops, width_px: int) -> np.ndarray:
    """(len(crops),) bool: which faces the bare detector finds when their box is ``width_px`` wide."""
    found = []
    for canvas, expected in canvases_at_width(crops, width_px):
        rows = engine.detector.detect(canvas, engine.detection_threshold)
        found += [bool(len(rows)) and bool((iou(rows[:, :4], box) >= MATCH_IOU).any()) for box in expected]
    return np.array(found)


def reliable_width(recalls: dict[int, float], floor: float) -> int | None:
    """Smallest width from which recall stays >= floor at every larger width measured."""
    best = None
    for width in sorted(recalls, reverse=True):
        if recalls[width] < floor:
            break
        best = width
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="t1, the astronaut and 12 ISS portraits; widths in 4 px steps")
    args = parser.parse_args()
    widths = list(range(8, 41, 4 if args.quick else 2))
    print(f"command: .venv/bin/python bench/bench_min_face.py{' --quick' if args.quick else ''}")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores (nothing here is timed)\n")
    home = Path(tempfile.mkdtemp(prefix="bench-min-face-"))
    try:
        paths = source_images(args.quick)
        results, conditional = {}, {}
        for name, engine in engines(home).items():
            crops = face_crops(engine, paths)
            found = {w: found_at(engine, crops, w) for w in widths}
            # recall among the faces found at the largest width: turned heads that need more pixels show here
            findable = found[widths[-1]]
            results[name] = (len(crops), {w: f.mean() for w, f in found.items()})
            conditional[name] = (int(findable.sum()), {w: f[findable].mean() for w, f in found.items()})
        header = " | ".join(f"{name} recall ({n} faces) | of the {conditional[name][0]} found at {widths[-1]} px"
                            for name, (n, _) in results.items())
        print(f"| box width on the canvas (px) | {header} |")
        print("|---:|" + "---:|---:|" * len(results))
        for w in widths:
            print(f"| {w} | " + " | ".join(f"{results[name][1][w]:.3f} | {conditional[name][1][w]:.3f}" for name in results) + " |")
        print()
        for name, (_, recalls) in results.items():
            for floor in (0.9, 0.95, 0.97, 0.99):
                width = reliable_width(recalls, floor)
                print(f"{name}: recall >= {floor} from {width if width is not None else math.nan} px")
            # Some faces (turned heads) are missed at every size: "reliable" = as good as the detector gets.
            plateau = recalls[max(recalls)] - PLATEAU_TOLERANCE
            width = reliable_width(recalls, plateau)
            print(f"{name}: recall within {PLATEAU_TOLERANCE} of its recall at {max(recalls)} px ({recalls[max(recalls)]:.3f}) "
                  f"from {width if width is not None else math.nan} px")
            for floor in (0.97, 0.99, 1.0):
                width = reliable_width(conditional[name][1], floor)
                shown = width if width is not None else math.nan
                print(f"{name}: of the faces found at {max(recalls)} px, >= {floor} found from {shown} px")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
