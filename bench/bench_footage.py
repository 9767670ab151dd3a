"""Benchmark footage extraction: the "skip" scan side by side with the full scan, in one run.

    nice -n 5 .venv/bin/python bench/bench_footage.py [--quick] [--fps 5] [--min-face 20] [--static-s 120]

For each shared clip of ../shared/data/video (street, hikers, marathon, group, negative,
hamilton) and a long static 1080p clip this benchmark makes (a still background with sensor
noise, a face crossing it for a few seconds; written to a temporary folder, never kept), at
``--fps`` frames per second sampled and ``min_face_px = --min-face``, in this one process:

* decode: PyAV decodes the sampled frames (FFmpeg threads; RGB for the sampled frames only);
* full: ``extract(..., scan="full")``: the engine's whole-frame detection on every sampled frame;
* skip: ``extract(..., scan="skip")``: whole key frames, in between only live-track regions and
  changed regions (:mod:`workbench.footage.regions`);
* skip-coarse: the same with ``regions.MOVING_SCAN = "coarse"`` (a frame whose changes cover it,
  a moving camera or a crowd, is searched as its live tracks' regions plus the whole frame on
  one coarse canvas instead of whole): the speed this trade would buy, and what it loses
  (run on the shared clips larger than a canvas; for the others it is the skip scan itself);

and prints, per clip: seconds of footage, speed (seconds of footage per second of wall time,
"x real time") of each, the skip scan's speed-up over the full scan, the share of full-scan
tracks the skip scan found (a full track is found when a skip track has a face in one of the same
frames with box IoU >= 0.5), the change of best-shot quality of the found tracks (mean and worst),
the share of frame pixels searched, and the search check: a gallery (temporary workspace) holds
fr_examples/train (Barack Obama is hamilton's mate), one subject per full-scan track (its best
shot), and the 221 ISS portraits as distractors; every found track's top candidate with the skip
scan's probe must equal the full-scan track's top candidate ("same top-1").

Figures, never assertions. Wall time depends on the machine and its load (printed beside the
table; other engineers share the cores): read the ratios, measured side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
CLIPS = (
    "street_royal_opera_house.mp4",
    "openmpf_hikers_video_02.mp4",
    "openmpf_marathon.mkv",
    "openmpf_group_video_01.mp4",
    "openmpf_no_faces_negative.mp4",
    "short_hamilton_clip.mp4",
)
#: a full-scan track is found by the skip scan when they share a frame with boxes this similar.
MATCH_IOU = 0.5
#: the detector's canvas side: frames up to this size are searched whole by every variant.
CANVAS_PX = 640


# -- the static clip -----------------------------------------------------------------------------


def make_static_clip(path: Path, seconds: float, engine, fps: float = 10.0, size: tuple[int, int] = (1920, 1080)) -> Path:
    """A mostly static 1080p clip: scikit-image's coffee photo as the scene, mild sensor noise on
    every frame, and one face (from InsightFace's t1.jpg, a package image) walking across for
    4 s in the middle. Encoded with libx264 through PyAV."""
    from fractions import Fraction

    import av
    import cv2
    from skimage import data as skdata

    from workbench.images import crop_box, load_image
    from workbench.samples import sample_image

    width, height = size
    scene = cv2.resize(skdata.coffee(), (width, height), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(12)
    noise = [rng.normal(0, 2.0, (height, width, 1)).astype(np.int16) for _ in range(8)]
    t1 = load_image(sample_image("t1"))
    face = max(engine.analyse(t1), key=lambda f: f.bbox_xyxy[2] - f.bbox_xyxy[0])
    patch = crop_box(t1, face.bbox_xyxy, 0.6)  # a loose crop of its largest face
    patch = cv2.resize(patch, (patch.shape[1] * 160 // patch.shape[0], 160))
    t_in, t_out = seconds / 2 - 2.0, seconds / 2 + 2.0
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(round(seconds * fps)):
            t = i / fps
            frame = np.clip(scene.astype(np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)
            if t_in <= t < t_out:
                x = int(200 + (width - 600) * (t - t_in) / (t_out - t_in))
                frame[500 : 500 + patch.shape[0], x : x + patch.shape[1]] = patch
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    wall_s: float
    result: object = None
    canvases: int | None = None  # detector canvases run (when the engine counts them)

    @property
    def speed(self) -> float:
        return self.seconds / self.wall_s if self.wall_s > 0 else float("inf")


def footage_seconds(path: Path, fps: float) -> float:
    from workbench.footage.decode import Sampling, plan_source

    plan = plan_source(path, Sampling(fps=fps))
    return float(plan.info.duration_s or plan.info.frame_count / (plan.info.nominal_fps or 25.0))


def frame_side(path: Path) -> int:
    """Longest side of the video's frames, px."""
    from workbench.footage.decode import plan_source

    info = plan_source(path).info
    return max(info.width or 0, info.height or 0)


def time_decode(path: Path, fps: float, seconds: float) -> Run:
    from workbench.footage import Sampling, iter_frames

    start = time.perf_counter()
    for _ in iter_frames(path, Sampling(fps=fps), problems=[]):
        pass
    return Run(seconds, time.perf_counter() - start)


def time_extract(path: Path, engine, fps: float, seconds: float, scan: str) -> Run:
    import warnings

    from workbench.footage import Sampling, extract

    stats_type = type(getattr(engine, "detection_stats", None))
    if hasattr(engine, "detection_stats"):
        engine.detection_stats = stats_type()  # the engine counts the canvases it runs
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = extract(path, engine, sampling=Sampling(fps=fps), scan=scan)
    wall = time.perf_counter() - start
    return Run(seconds, wall, result, getattr(getattr(engine, "detection_stats", None), "canvases", None))


def iou(a, b) -> float:
    from workbench.footage.tracking import box_iou

    return box_iou(a, b)


def match_tracks(full, skip) -> dict[int, int]:
    """{full track id: skip track id} for the full tracks the skip scan found: the skip track
    sharing the most frames with it at box IoU >= MATCH_IOU."""
    matches = {}
    for track in full.tracks:
        boxes = {f.frame_index: f.face.bbox_xyxy for f in track.faces}
        best, best_shared = None, 0
        for other in skip.tracks:
            shared = sum(1 for f in other.faces if f.frame_index in boxes and iou(boxes[f.frame_index], f.face.bbox_xyxy) >= MATCH_IOU)
            if shared > best_shared:
                best, best_shared = other.track_id, shared
        if best is not None:
            matches[track.track_id] = best
    return matches


# -- the search check ------------------------------------------------------------------------------


def build_gallery(home: Path, engine, results: dict[str, object], tmp: Path):
    """A workspace whose gallery holds fr_examples/train, every full-scan track's best shot (one
    subject each, ``<clip>#<track id>``) and the ISS portraits. Returns the open workspace."""
    from workbench.workspace import Workspace

    folder = tmp / "custody"
    shutil.copytree(SHARED / "faces" / "fr_examples" / "train", folder)
    for clip, result in results.items():
        for track_id, crop_path in result.save_best_shots(tmp / "shots" / clip).items():
            subject = folder / f"{Path(clip).stem}#{track_id}"
            subject.mkdir()
            shutil.copy(crop_path, subject / crop_path.name)
    for path in sorted((SHARED / "faces" / "iss_portraits").glob("*.jpg")):  # distractors
        (folder / path.stem).mkdir()
        shutil.copy(path, folder / path.stem / path.name)
    ws = Workspace.open(home, user="bench", engine=engine)
    ws.enrol(folder, report_path=tmp / "enrol.csv")
    return ws


def candidates(gallery, track, top: int = 5) -> list[str]:
    """Subject ids of the track's candidate list (its probe: the good faces, fused)."""
    from workbench.footage import track_probe
    from workbench.gallery.search import search

    probe = track_probe(track)
    if not probe.faces:
        return []
    return list(search(gallery, probe.faces, top=top, exact=True).subject_ids)


def top_candidate(gallery, track) -> str | None:
    found = candidates(gallery, track, top=1)
    return found[0] if found else None


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="street, hamilton and a 30 s static clip only (< 2 min)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second sampled (default 5)")
    parser.add_argument("--min-face", type=int, default=20, help="min_face_px (default 20)")
    parser.add_argument("--static-s", type=float, default=120.0, help="length of the static clip, seconds (default 120)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED} (set WORKBENCH_SHARED_DATA)", file=sys.stderr)
        return 1
    from workbench.config import Settings
    from workbench.engine import FaceEngine
    from workbench.footage import regions
    from workbench.models import ensure_default_pack

    clips = [SHARED / "video" / name for name in (CLIPS if not args.quick else (CLIPS[0], CLIPS[5]))]
    static_s = 30.0 if args.quick else args.static_s
    command = "nice -n 5 .venv/bin/python bench/bench_footage.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="bench-footage-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        ensure_default_pack(home / "models")
        settings = Settings(home=home, min_face_px=args.min_face)
        engine = FaceEngine.from_settings(settings)
        clips.append(make_static_clip(tmp / f"static_{static_s:g}s_1080p.mp4", static_s, engine))
        load_before = os.getloadavg()
        rows, results = [], {}
        for clip in clips:
            seconds = footage_seconds(clip, args.fps)
            decode = time_decode(clip, args.fps, seconds)
            full = time_extract(clip, engine, args.fps, seconds, "full")
            skip = time_extract(clip, engine, args.fps, seconds, "skip")
            coarse = skip
            if clip.parent == SHARED / "video" and frame_side(clip) > CANVAS_PX:
                # The variant only differs on frames larger than a canvas (smaller ones are searched whole).
                regions.MOVING_SCAN = "coarse"
                try:
                    coarse = time_extract(clip, engine, args.fps, seconds, "skip")
                finally:
                    regions.MOVING_SCAN = "full"
            results[clip.name] = full.result
            rows.append((clip, seconds, decode, full, skip, coarse))
            print(f"{clip.name}: decode {decode.speed:.2f}x, full {full.speed:.2f}x, skip {skip.speed:.2f}x, "
                  f"coarse {coarse.speed:.2f}x", file=sys.stderr)
        ws = build_gallery(tmp / "ws", engine, results, tmp)
        try:
            print_table(command, args, rows, ws, load_before)
        finally:
            ws.close()
    return 0


def compare(full, skip, gallery) -> dict:
    """What the skip scan lost against the full scan: tracks found, best-shot quality change of
    the found ones, and whether each found track's top candidate is the full track's."""
    f, s = full.result, skip.result
    matches = match_tracks(f, s)
    by_id = {t.track_id: t for t in s.tracks}
    changes = [by_id[matches[t.track_id]].quality - t.quality for t in f.tracks if t.track_id in matches]
    differ = []
    for t in f.tracks:
        if t.track_id in matches:
            full_top, skip_top = top_candidate(gallery, t), top_candidate(gallery, by_id[matches[t.track_id]])
            if full_top != skip_top:
                differ.append(f"track {t.track_id}: {full_top} -> {skip_top}")
    lost = [t for t in f.tracks if t.track_id not in matches]
    return {
        "tracks": len(f.tracks),
        "found": len(matches),
        "found_text": f"{len(matches)}/{len(f.tracks)}"
        + (f" (missed: {', '.join(f'{t.n_faces} face(s) q {t.quality:.2f}' for t in lost)})" if lost else ""),
        "quality": f"{np.mean(changes):+.3f} / {min(changes):+.3f}" if changes else "-",
        "same": len(matches) - len(differ),
        "same_text": f"{len(matches) - len(differ)}/{len(matches)}" + (f" ({'; '.join(differ)})" if differ else ""),
        "speedup": full.wall_s / skip.wall_s,
    }


def print_table(command: str, args, rows, ws, load_before) -> None:
    gallery = ws.gallery
    print(f"`{command}`\n")
    print(
        f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} (1/5 min), after {os.getloadavg()[0]:.2f}; "
        f"{os.cpu_count()} cores; {args.fps:g} frames/s sampled; min_face_px {args.min_face}; "
        f"gallery: fr_examples/train + one subject per full-scan track + 221 ISS portraits\n"
    )
    print(
        "| clip | footage s | decode x | full x | skip x | speed-up | tracks found | best-shot quality change (mean / worst) "
        "| canvases full / skip | pixels searched | key / rescans / frames | same top-1 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    totals = {"skip": [0, 0, 0], "coarse": [0, 0, 0]}
    coarse_lines = []
    for clip, seconds, decode, full, skip, coarse in rows:
        main_cmp, coarse_cmp = compare(full, skip, gallery), compare(full, coarse, gallery)
        for name, c in (("skip", main_cmp), ("coarse", coarse_cmp)):
            totals[name] = [totals[name][0] + c["tracks"], totals[name][1] + c["found"], totals[name][2] + c["same"]]
        scan = skip.result.scan
        print(
            f"| {clip.name} | {seconds:.1f} | {decode.speed:.2f} | {full.speed:.2f} | {skip.speed:.2f} | {main_cmp['speedup']:.2f}x "
            f"| {main_cmp['found_text']} | {main_cmp['quality']} | {full.canvases} / {skip.canvases} | {scan.searched_share:.0%} "
            f"| {scan.key_frames} / {scan.rescans} / {scan.frames} | {main_cmp['same_text']} |"
        )
        cs = coarse.result.scan
        coarse_lines.append(
            f"| {clip.name} | {coarse.speed:.2f} | {coarse_cmp['speedup']:.2f}x | {coarse_cmp['found_text']} | {coarse_cmp['quality']} "
            f"| {full.canvases} / {coarse.canvases} | {cs.key_frames} / {cs.coarse} / {cs.frames} | {coarse_cmp['same_text']} |"
        )
    for name, (tracks, found, same) in totals.items():
        label = "skip (default)" if name == "skip" else "skip, MOVING_SCAN = coarse"
        print(f"\n{label}: {found}/{tracks} full-scan tracks found ({found / max(tracks, 1):.1%}); same top-1 for {same}/{found}")
    print("\nVariant: frames whose changes cover the frame (moving camera, crowd) searched as live-track regions plus one")
    print("coarse whole-frame canvas (regions.MOVING_SCAN = \"coarse\") instead of whole:\n")
    print("| clip | skip-coarse x | speed-up | tracks found | best-shot quality change | canvases full / coarse "
          "| key / coarse / frames | same top-1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(coarse_lines))
    hamilton = next((r for r in rows if r[0].name == "short_hamilton_clip.mp4"), None)
    if hamilton is not None:
        # Each track's own best shot is a subject, so Barack Obama's track ranks it first and obama second.
        for name, result in (("full", hamilton[3].result), ("skip", hamilton[4].result)):
            ranks = {t.track_id: candidates(gallery, t, top=300) for t in result.tracks}
            best = min(((ids.index("obama") + 1, tid) for tid, ids in ranks.items() if "obama" in ids), default=None)
            where = f"{best[0]} (track {best[1]})" if best else "not in the top 300"
            print(f"\nhamilton {name}: best rank of obama (fr_examples/train) over the tracks: {where}")
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    sys.exit(main())
