"""``workbench demo``: the library at work on images that installed packages ship.

Until the dashboards land this finds and describes the faces of the sample images, and shows
that two people in InsightFace's group photo score low against each other while a degraded
copy of one face scores high against the original.
"""

from __future__ import annotations

import numpy as np

from .config import Settings
from .samples import SAMPLE_NAMES, sample_image


def run_demo(settings: Settings, out) -> int:
    from .engine import FaceEngine
    from .images import load_image

    engine = FaceEngine.from_settings(settings)
    report, lines = [], [f"workspace {settings.home}, pack {engine.pack_id}"]
    for name in SAMPLE_NAMES:
        path = sample_image(name)
        faces = engine.analyse(path)
        report.append({"image": str(path), "faces": [f.as_dict() for f in faces]})
        lines.append(f"{path.name}: {len(faces)} face(s), quality " + ", ".join(f"{f.quality.score:.2f}" for f in faces))
    group = engine.analyse(sample_image("t1"))
    rgb = load_image(sample_image("t1"))
    x1, y1, x2, y2 = (int(v) for v in group[0].bbox_xyxy)
    pad = (x2 - x1) // 2
    crop = rgb[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    small = crop[::3, ::3].copy()  # a third of the resolution, like a distant CCTV face
    probe = engine.prominent_face(np.ascontiguousarray(small))
    same = float(probe.embedding @ group[0].embedding) if probe else None
    different = float(group[0].embedding @ group[1].embedding)
    lines.append(f"same person, one third resolution: similarity {same:.3f}" if same is not None else "no face in the downscaled crop")
    lines.append(f"two different people:              similarity {different:.3f}")
    out.emit({"pack_id": str(engine.pack_id), "images": report, "same_person_score": same, "different_people_score": different}, lines)
    return 0
