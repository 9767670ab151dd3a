"""How well a box drawn by a person stands in for the detector: manual probes on t1.jpg.

For each of the six faces of InsightFace's t1.jpg, boxes of the shapes people draw (the
detector's own box, a square, a loose box, a tight box, a box shifted by 8%) are aligned and
embedded as drawn (``FaceEngine.face_from_box``) and compared with the detector's embedding of
the same face and of the five others. Prints, per box shape, the cosine with the same face and
how many of the six are closer to their own face than to any other.

    .venv/bin/python bench/bench_manual_box.py
"""

from __future__ import annotations

import tempfile

import numpy as np

from workbench.config import Settings
from workbench.engine import FaceEngine
from workbench.images import load_image
from workbench.samples import sample_image


def boxes_around(bbox) -> dict[str, tuple[float, float, float, float]]:
    x1, y1, x2, y2 = bbox
    w, h = x2 - x1, y2 - y1
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(w, h)
    return {
        "detector box": bbox,
        "square": (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2),
        "loose (+15%)": (x1 - 0.15 * w, y1 - 0.15 * h, x2 + 0.15 * w, y2 + 0.15 * h),
        "tight (-10%)": (x1 + 0.1 * w, y1 + 0.1 * h, x2 - 0.1 * w, y2 - 0.1 * h),
        "shifted 8%": (x1 + 0.08 * w, y1 + 0.08 * h, x2 + 0.08 * w, y2 + 0.08 * h),
    }


def main() -> None:
    engine = FaceEngine.from_settings(Settings(home=tempfile.mkdtemp(prefix="bench-manual-"), user="bench"))
    rgb = load_image(sample_image("t1"))
    faces = sorted(engine.analyse(rgb), key=lambda f: f.bbox_xyxy[0])
    rows: dict[str, list[tuple[float, float]]] = {}
    for i, face in enumerate(faces):
        for name, box in boxes_around(face.bbox_xyxy).items():
            manual = engine.face_from_box(rgb, box)
            scores = [float(manual.embedding @ other.embedding) for other in faces]
            rows.setdefault(name, []).append((scores[i], max(s for j, s in enumerate(scores) if j != i)))
    print("| box drawn | cosine with the same face (min / median / max) | closer to own face than to the 5 others |")
    print("|---|---|---|")
    for name, values in rows.items():
        own = np.array([v[0] for v in values])
        wins = sum(v[0] > v[1] for v in values)
        print(f"| {name} | {own.min():.2f} / {np.median(own):.2f} / {own.max():.2f} | {wins} of {len(values)} |")
    print("\ncommand: .venv/bin/python bench/bench_manual_box.py")


if __name__ == "__main__":
    main()
