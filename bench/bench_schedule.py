"""Detection schedule: the workbench beside InsightFace's own FaceAnalysis on the same models and photos.

    .venv/bin/python bench/bench_schedule.py [--quick] [--min-face 20]

Pipelines, each run on every image in turn, interleaved image by image (so load from other work
on the machine falls on all of them alike), after one warm-up image each:

* ``insightface``: ``insightface.app.FaceAnalysis`` on SCRFD-500M + MobileFaceNet from
  ``../shared/data/models`` (a temporary ``root/models/scrfd_mfn/`` holding the two files, so
  nothing downloads), ``allowed_modules`` detection and recognition, ``det_size`` 640: one
  640x640 canvas per image; ``app.get(bgr)``: detect, align, embed.
* ``SCRFD planned`` / ``SCRFD dense``: ``FaceEngine.analyse`` (detect, align, embed, quality) with
  the same two files imported as an InsightFace-style pack, at ``min_face_px`` 20, with the
  planned schedule (the default) and the dense one (the pyramid before issue 12).
* ``YuNet planned`` / ``YuNet dense``: the same with the default pack "opencv-zoo" (YuNet + SFace).

Images (decoded once, upright, before any timing): ``../shared/data/faces`` compreface_samples,
iss_onboard, fr_examples train and test, iss_portraits, and frames of the shared clips in
``../shared/data/video`` (one per second). ``--quick``: a subset (under 2 minutes).

Printed: images/s, faces found, canvases per image (from ``engine.detection_stats``; one for
InsightFace), faces InsightFace found that the pipeline misses (box IoU >= 0.5; split into faces
of at least 0.8 x min_face_px, which the engine keeps, and smaller ones, which ``min_face_px``
drops on purpose), and faces the pipeline finds that InsightFace misses; then images/s per
folder. Figures, never assertions; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODEL_FILES = ("scrfd_500m_bnkps.onnx", "mobilefacenet_128d.onnx")
CLIPS = (
    "street_royal_opera_house.mp4",
    "openmpf_hikers_video_02.mp4",
    "openmpf_group_video_01.mp4",
    "openmpf_marathon.mkv",
    "openmpf_no_faces_negative.mp4",
    "short_hamilton_clip.mp4",
)
MATCH_IOU = 0.5
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def photo_paths(quick: bool) -> list[tuple[str, Path]]:
    """(folder label, path) of the shared photos."""
    faces = SHARED / "faces"
    folders = {
        "compreface_samples": sorted((faces / "compreface_samples").glob("*.jpg")),
        "iss_onboard": sorted((faces / "iss_onboard").glob("*.jpg")),
        "fr_examples": sorted(p for p in (faces / "fr_examples").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
        "iss_portraits": sorted((faces / "iss_portraits").glob("*.jpg")),
    }
    if quick:
        folders["compreface_samples"] = [p for p in folders["compreface_samples"] if p.stat().st_size < 400_000][:4]
        folders["fr_examples"] = folders["fr_examples"][:4]
        folders["iss_portraits"] = folders["iss_portraits"][:12]
    return [(label, path) for label, paths in folders.items() for path in paths]


def video_frames(quick: bool, every_s: float = 1.0) -> list[tuple[str, str, np.ndarray]]:
    """(label, name, RGB frame) every ``every_s`` seconds of each shared clip (the first frame only with ``quick``)."""
    frames = []
    for clip in CLIPS:
        path = SHARED / "video" / clip
        capture = cv2.VideoCapture(str(path))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        step = max(1, round(fps * every_s))
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if index % step == 0:
                frames.append(("video frames", f"{clip}#{index}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                if quick:
                    break
            index += 1
        capture.release()
    return frames


def insightface_app(root: Path):
    """FaceAnalysis on the two shared model files, laid out as root/models/scrfd_mfn/*.onnx (no download)."""
    from insightface.app import FaceAnalysis

    warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")  # its own use of skimage
    folder = root / "models" / "scrfd_mfn"
    folder.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copy(SHARED / "models" / name, folder)
    app = FaceAnalysis(name="scrfd_mfn", root=str(root), allowed_modules=["detection", "recognition"], providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1, det_size=(640, 640))
    return app


def workbench_engines(home: Path, min_face_px: int) -> dict:
    """{label: FaceEngine} for both packs and both schedules."""
    from workbench.config import Settings
    from workbench.engine import FaceEngine
    from workbench.models import Preprocessing, ensure_default_pack, import_pack

    ensure_default_pack(home / "models")
    source = home / "scrfd-src"
    source.mkdir()
    for name in MODEL_FILES:
        shutil.copy(SHARED / "models" / name, source)
    import_pack(home / "models", source, name="scrfd-mfn", preprocessing=Preprocessing("RGB", 127.5, 128.0))
    engines = {}
    for label, pack in (("SCRFD", "scrfd-mfn"), ("YuNet", "opencv-zoo")):
        for schedule in ("planned", "dense"):
            settings = Settings(home=home, pack=pack, min_face_px=min_face_px)
            engines[f"{label} {schedule}"] = FaceEngine.from_settings(settings, schedule=schedule)
    return engines


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def unmatched(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Boxes of ``reference`` that no box of ``other`` overlaps at IoU >= MATCH_IOU (greedy, one to one)."""
    ious = iou_matrix(reference, other)
    taken, missed = set(), []
    for i in range(len(reference)):
        order = np.argsort(-ious[i]) if len(other) else []
        match = next((j for j in order if ious[i, j] >= MATCH_IOU and j not in taken), None)
        if match is None:
            missed.append(reference[i])
        else:
            taken.add(match)
    return np.array(missed).reshape(-1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a subset of the photos and one frame per clip (under 2 minutes)")
    parser.add_argument("--min-face", type=int, default=20, help="min_face_px of the workbench engines")
    args = parser.parse_args()
    if not all((SHARED / "models" / name).is_file() for name in MODEL_FILES):
        print(f"shared models not found under {SHARED / 'models'}: nothing to compare")
        return
    print(f"command: .venv/bin/python bench/bench_schedule.py{' --quick' if args.quick else ''} --min-face {args.min_face}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min) at the start\n")

    from workbench.engine import DetectionStats
    from workbench.images import load_image

    images = [(label, path.name, load_image(path)) for label, path in photo_paths(args.quick)] + video_frames(args.quick)
    tmp = Path(tempfile.mkdtemp(prefix="bench-schedule-"))
    try:
        app = insightface_app(tmp / "insightface")
        engines = workbench_engines(tmp / "home", args.min_face)
        pipelines = {"insightface": lambda rgb, bgr: np.array([f.bbox for f in app.get(bgr)]).reshape(-1, 4)}
        for label, engine in engines.items():
            pipelines[label] = lambda rgb, bgr, engine=engine: np.array([f.bbox_xyxy for f in engine.analyse(rgb)]).reshape(-1, 4)
        run(images, pipelines, engines, DetectionStats, args.min_face)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} (1 min) at the end")


def run(images, pipelines: dict, engines: dict, stats_type, min_face_px: int) -> None:
    """Time every pipeline on every image (interleaved, rotating the order) and print the tables."""
    names = list(pipelines)
    warm_rgb = images[0][2]
    for name in names:
        pipelines[name](warm_rgb, np.ascontiguousarray(warm_rgb[..., ::-1]))
    for engine in engines.values():
        engine.detection_stats = stats_type()
    seconds = {name: 0.0 for name in names}
    per_folder: dict[tuple[str, str], float] = {}
    boxes: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for k, (label, _, rgb) in enumerate(images):
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # InsightFace takes OpenCV's BGR; converted outside the timing
        for name in names[k % len(names) :] + names[: k % len(names)]:
            started = time.perf_counter()
            found = pipelines[name](rgb, bgr)
            elapsed = time.perf_counter() - started
            seconds[name] += elapsed
            per_folder[(name, label)] = per_folder.get((name, label), 0.0) + elapsed
            boxes[name].append(found)
    print_summary(images, names, seconds, boxes, engines, min_face_px)
    print_folders(images, names, per_folder)


def print_summary(images, names, seconds, boxes, engines, min_face_px: int) -> None:
    count = len(images)
    reference = boxes["insightface"]
    print(f"{count} images ({', '.join(sorted({label for label, _, _ in images}))}); min_face_px {min_face_px} for the workbench\n")
    print("| pipeline | images/s | x insightface | faces | canvases per image | canvas Mpx per image "
          f"| insightface faces missed (>= {0.8 * min_face_px:.0f} px / smaller) | faces insightface misses |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base_rate = count / seconds["insightface"]
    for name in names:
        rate = count / seconds[name]
        faces = sum(len(b) for b in boxes[name])
        if name == "insightface":
            canvases, megapixels, missed, extra = "1", f"{640 * 640 / 1e6:.2f}", "-", "-"
        else:
            stats = engines[name].detection_stats
            canvases, megapixels = f"{stats.canvases / stats.images:.2f}", f"{stats.canvas_pixels / stats.images / 1e6:.2f}"
            lost = [unmatched(r, b) for r, b in zip(reference, boxes[name])]
            widths = np.concatenate([m[:, 2] - m[:, 0] for m in lost]) if lost else np.zeros(0)
            kept = int((widths >= 0.8 * min_face_px).sum())
            missed = f"{kept} / {len(widths) - kept}"
            extra = str(sum(len(unmatched(b, r)) for r, b in zip(reference, boxes[name])))
        print(f"| {name} | {rate:.2f} | x{rate / base_rate:.2f} | {faces} | {canvases} | {megapixels} | {missed} | {extra} |")
    for name in names[1:]:
        lost = [(images[i][1], m) for i, m in enumerate(unmatched(r, b) for r, b in zip(reference, boxes[name])) if len(m)]
        for image_name, missed in lost:
            widths = ", ".join(f"{w:.0f}" for w in missed[:, 2] - missed[:, 0])
            print(f"  {name} misses insightface's face(s) of width {widths} px in {image_name}")


def print_folders(images, names, per_folder) -> None:
    labels = sorted({label for label, _, _ in images})
    counts = {label: sum(1 for image_label, _, _ in images if image_label == label) for label in labels}
    print("\nimages/s per folder:\n")
    print("| folder | images | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for label in labels:
        rates = " | ".join(f"{counts[label] / per_folder[(name, label)]:.2f}" for name in names)
        print(f"| {label} | {counts[label]} | {rates} |")


if __name__ == "__main__":
    sys.exit(main())
