"""``workbench demo``: a demo workspace built from images that installed packages ship, then the
dashboards on it.

Builds (once; re-running reuses it) a small custody gallery: the six people of InsightFace's
``t1.jpg`` (cut out one per subject, ``DEMO-T1-1`` ... ``DEMO-T1-6``), InsightFace's Tom Hanks
portrait and scikit-image's astronaut. Makes two probes of one of the six, as an analyst would
receive them:

* a "CCTV still" (smaller, blurred, heavily compressed), and
* a SYNTHETIC 4-second clip (``demo_clip_SYNTHETIC.mp4``): two of the six cut out of t1.jpg
  and moved across scikit-image's coffee photo; labelled synthetic in its name and here.

Opens case ``DEMO-1``, searches the still inside it (so the dashboards open on a case with a
recorded search), prints the candidate list and serves the dashboards unless told not to. No
real custody data is involved and nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import CaseError
from .fileio import atomic_write
from .images import crop_box, load_image
from .samples import sample_image
from .workspace import Workspace

DEMO_CASE = "DEMO-1"
#: which of t1's people (left to right) the demo probes show.
DEMO_PERSON = 4
#: the other person crossing the demo clip.
DEMO_PASSER_BY = 2
CLIP_NAME = "demo_clip_SYNTHETIC.mp4"
CLIP_SIZE = (640, 360)  # width, height
CLIP_FPS = 10
CLIP_SECONDS = 4.0


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()


def make_demo_clip(path: Path, walker: np.ndarray, passer_by: np.ndarray) -> Path:
    """Write the SYNTHETIC demo clip: two face crops (RGB) crossing a face-free photo.

    MPEG-4 part 2 through OpenCV's writer (the decoder side stays PyAV's); about 150 KB.
    """
    from skimage import data as skdata

    width, height = CLIP_SIZE
    scene = cv2.resize(skdata.coffee(), (width, height), interpolation=cv2.INTER_AREA)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (width, height))
    if not writer.isOpened():
        raise CaseError(f"{path}: OpenCV cannot write an MPEG-4 video here")
    try:
        frames = int(CLIP_SECONDS * CLIP_FPS)
        for i in range(frames):
            u = i / (frames - 1)
            canvas = scene.copy()
            for patch, (x0, x1), y, (h0, h1) in ((walker, (80, 300), 220, (120, 160)), (passer_by, (580, 430), 110, (90, 100))):
                h = int(h0 + u * (h1 - h0))
                w = int(patch.shape[1] * h / patch.shape[0])
                cx = int(x0 + u * (x1 - x0))
                top, left = max(0, y - h // 2), max(0, cx - w // 2)
                resized = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA)
                region = canvas[top : top + h, left : left + w]
                region[...] = resized[: region.shape[0], : region.shape[1]]
            writer.write(np.ascontiguousarray(canvas[:, :, ::-1]))
    finally:
        writer.release()
    tmp.replace(path)
    return path


def build_demo_workspace(ws: Workspace) -> dict:
    """Write the demo custody folder and probes, enrol them, open the demo case. Idempotent."""
    root = ws.home / "demo"
    custody = root / "custody"
    t1 = load_image(sample_image("t1"))
    people = sorted(ws.engine.detect(t1), key=lambda f: f.bbox_xyxy[0])
    images = {f"DEMO-T1-{i}": crop_box(t1, face.bbox_xyxy, 0.6) for i, face in enumerate(people, start=1)}
    images["DEMO-HANKS"] = load_image(sample_image("tom_hanks"))
    images["DEMO-COLLINS"] = load_image(sample_image("astronaut"))
    for subject, rgb in images.items():
        path = custody / subject / "custody.png"
        if not path.exists():
            atomic_write(path, _png(rgb))

    # The still: the same person seen small, blurred and compressed, as on a CCTV frame.
    face = people[DEMO_PERSON - 1]
    crop = crop_box(t1, face.bbox_xyxy, 1.2)
    scale = 36.0 / face.width
    small = cv2.GaussianBlur(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), (0, 0), 0.8)
    probe = root / "probes" / "cctv_still.jpg"
    if not probe.exists():
        atomic_write(probe, cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 35])[1].tobytes())
    clip = root / "probes" / CLIP_NAME
    if not clip.exists():
        make_demo_clip(clip, crop_box(t1, face.bbox_xyxy, 0.5), crop_box(t1, people[DEMO_PASSER_BY - 1].bbox_xyxy, 0.5))

    summary = ws.enrol(custody)
    try:
        ws.case(DEMO_CASE)
    except CaseError:
        ws.new_case(
            DEMO_CASE, offence="demonstration", purpose="show the workbench on images shipped with installed packages", officer="demo"
        )
    return {
        "custody": str(custody),
        "probe": str(probe),
        "clip": str(clip),
        "case": DEMO_CASE,
        "enrolment": summary.as_dict(),
        "expected": f"DEMO-T1-{DEMO_PERSON}",
    }


def run_demo(ws: Workspace, out) -> int:
    """Build the demo workspace, search the CCTV still in case DEMO-1 and print the list (the
    ``demo`` command then serves the dashboards on it)."""
    built = build_demo_workspace(ws)
    run = ws.search_files(built["case"], [built["probe"]], top=5)
    document = run.as_dict()
    lines = [
        f"demo workspace {ws.home}: {built['enrolment']['enrolled']} enrolled now, {built['enrolment']['skipped']} already there",
        f"case {built['case']}, search {run.search_id}: probe {built['probe']} (the person enrolled as {built['expected']})",
    ]
    for probe in run.probes:
        box = ", ".join(f"{v:.0f}" for v in probe.bbox_xyxy or ())
        lines.append(f"face found in the probe: box ({box}) px, quality {probe.quality:.2f}; candidates:")
    for c in document["candidates"]:
        lines.append(f"  {c['rank']}. {c['subject_id']:<14} {c['score']:.3f}" + ("  above threshold" if c["above_threshold"] else ""))
    lines += [
        "Candidates are leads for trained people to review, not identifications.",
        f"SYNTHETIC demo clip for the dashboard: {built['clip']}",
    ]
    out.emit({"workspace": str(ws.home), **built, "search": document}, lines)
    return 0
