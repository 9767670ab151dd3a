"""``workbench faces IMAGE...`` and ``workbench compare A B``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..errors import NoFaceError, WorkbenchError
from . import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_faces(args, ws: Workspace, out: Output) -> int:
    engine = ws.engine
    results, lines, errors = [], [], []
    for image in args.images:
        try:
            faces = engine.analyse(image)
        except WorkbenchError as exc:
            results.append({"path": image, "error": str(exc)})
            lines.append(f"{image}: error: {exc}")
            errors.append(str(exc))  # the message names the file
            continue
        results.append({"path": image, "faces": [f.as_dict() for f in faces]})
        lines.append(f"{image}: {len(faces)} face(s)")
        for i, f in enumerate(faces, start=1):
            x1, y1, x2, y2 = f.bbox_xyxy
            q = f.quality
            lines.append(
                f"  {i}. box ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})  detector {f.detector_score:.2f}  "
                f"quality {q.score:.2f}  eyes {q.inter_ocular_px:.0f} px  yaw "
                f"{q.yaw_deg:+.0f}  pitch {q.pitch_deg:+.0f}  sharpness {q.sharpness:.0f}"
            )
    document = {"pack_id": str(engine.pack_id), "images": results}
    if errors:
        document["error"] = errors[0] if len(errors) == 1 else f"{len(errors)} of {len(args.images)} images cannot be read"
    out.emit(document, lines)
    for message in errors:  # the other images' results are above; the failures also go to stderr
        print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR if errors else EXIT_OK


def cmd_compare(args, ws: Workspace, out: Output) -> int:
    engine = ws.engine
    faces = []
    for image in (args.image_a, args.image_b):
        face = engine.prominent_face(image)
        if face is None:
            raise NoFaceError(f"{image}: no face found")
        faces.append(face)
    score = float(faces[0].embedding @ faces[1].embedding)
    threshold = ws.settings.threshold if ws.settings.threshold is not None else engine.pack.default_threshold
    above = None if threshold is None else score >= threshold
    data = {
        "score": round(score, 4),
        "threshold": threshold,
        "above_threshold": above,
        "pack_id": str(engine.pack_id),
        "faces": [{"path": p, **f.as_dict()} for p, f in zip((args.image_a, args.image_b), faces)],
    }
    verdict = (
        "no operating threshold set for this pack"
        if threshold is None
        else (f"{'above' if above else 'below'} the operating threshold {threshold:.3f}")
    )
    out.emit(
        data,
        [f"similarity {score:.3f} (cosine, -1..1): {verdict}", "A score is a lead for a trained person to review, not an identification."],
    )
    return EXIT_OK


def register(commands, add) -> None:
    p = add(commands, "faces", cmd_faces, "faces found in images: box, landmarks, detector score, quality")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p = add(commands, "compare", cmd_compare, "similarity of the most prominent face of each image")
    p.add_argument("image_a", metavar="IMAGE_A")
    p.add_argument("image_b", metavar="IMAGE_B")
