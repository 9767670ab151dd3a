"""``workbench demo``: a demo workspace built from images that installed packages ship.

Builds (once; re-running reuses it) a small custody gallery: the six people of InsightFace's
``t1.jpg`` (cut out one per subject, ``DEMO-T1-1`` ... ``DEMO-T1-6``), InsightFace's Tom Hanks
portrait and scikit-image's astronaut. Makes a "CCTV still" of one of the six (smaller,
blurred, heavily compressed), opens case ``DEMO-1`` and searches the still inside it, then
prints the candidate list. No real custody data is involved and nothing is downloaded.
"""

from __future__ import annotations

import cv2

from .config import Settings
from .images import crop_box
from .samples import sample_image

DEMO_CASE = "DEMO-1"
#: which of t1's people (left to right) the demo CCTV still shows.
DEMO_PERSON = 4


def build_demo_workspace(settings: Settings, engine) -> dict:
    """Write the demo custody folder and probe, enrol them, open the demo case. Idempotent."""
    from .cases.store import CaseStore
    from .errors import CaseError
    from .fileio import atomic_write
    from .gallery.store import Gallery
    from .gallery.enrol import enrol, items_from_folder
    from .images import load_image

    root = settings.home / "demo"
    custody = root / "custody"
    t1 = load_image(sample_image("t1"))
    people = sorted(engine.detect(t1), key=lambda f: f.bbox_xyxy[0])
    images = {f"DEMO-T1-{i}": crop_box(t1, face.bbox_xyxy, 0.6) for i, face in enumerate(people, start=1)}
    images["DEMO-HANKS"] = load_image(sample_image("tom_hanks"))
    images["DEMO-COLLINS"] = load_image(sample_image("astronaut"))
    for subject, rgb in images.items():
        path = custody / subject / "custody.png"
        if not path.exists():
            atomic_write(path, cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes(), mode=0o644)

    # The probe: the same person seen small, blurred and compressed, as on a CCTV frame.
    face = people[DEMO_PERSON - 1]
    crop = crop_box(t1, face.bbox_xyxy, 1.2)
    scale = 36.0 / face.width
    small = cv2.GaussianBlur(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), (0, 0), 0.8)
    probe = root / "probes" / "cctv_still.jpg"
    if not probe.exists():
        atomic_write(probe, cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 35])[1].tobytes(), mode=0o644)

    with Gallery.open(settings) as gallery:
        items, problems = items_from_folder(custody)
        summary = enrol(gallery, engine, items, problems=problems, source=str(custody))
    store = CaseStore.open(settings)
    try:
        store.case(DEMO_CASE)
    except CaseError:
        store.new_case(DEMO_CASE, offence="demonstration", purpose="show the workbench on images shipped with installed packages", officer="demo")
    return {"custody": str(custody), "probe": str(probe), "case": DEMO_CASE, "enrolment": summary.as_dict(), "expected": f"DEMO-T1-{DEMO_PERSON}"}


def run_demo(settings: Settings, out) -> int:
    from .engine import FaceEngine
    from .cases.investigate import run_search

    engine = FaceEngine.from_settings(settings)
    built = build_demo_workspace(settings, engine)
    run = run_search(settings, built["case"], [built["probe"]], engine=engine, top=5)
    document = run.as_dict()
    lines = [
        f"demo workspace {settings.home}: {built['enrolment']['enrolled']} enrolled now, {built['enrolment']['skipped']} already there",
        f"case {built['case']}, search {run.search_id}: probe {built['probe']} (the person enrolled as {built['expected']})",
    ]
    for probe in run.probes:
        box = ", ".join(f"{v:.0f}" for v in probe.bbox_xyxy or ())
        lines.append(f"face found in the probe: box ({box}) px, quality {probe.quality:.2f}; candidates:")
    for c in document["candidates"]:
        lines.append(f"  {c['rank']}. {c['subject_id']:<14} {c['score']:.3f}" + ("  above threshold" if c["above_threshold"] else ""))
    lines += [
        "Candidates are leads for trained people to review, not identifications.",
        f"Next: workbench --home {settings.home} review first {run.search_id} SUBJECT --verdict ... --reason ...",
    ]
    out.emit({"workspace": str(settings.home), **built, "search": document}, lines)
    return 0
