"""``workbench search PROBE...``: candidate lists for the faces of probe images.

Each face found in an image is one probe (a person), searched on its own; probes are listed
best quality first and the top-level ``candidates`` repeat the first probe's list. With
``--fuse`` the images are stills of one person: the most prominent face of each fuses into one
probe. A video gives one probe per face track (its good faces fused), branching in
:func:`probes_from_path`; with ``--fuse`` only its best-quality track is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NoFaceError
from . import EXIT_OK, engine_for

if TYPE_CHECKING:
    from ..cli import Output
    from ..config import Settings

#: suffixes that mean "video": searched by face track once the footage module provides tracks.
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".ogg", ".ogv", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp"})


def probes_from_path(path: str, engine, *, fuse: bool = False) -> list:
    """The probes of one file: the single place where image and video probes branch.

    An image gives one probe per face found (or, with ``fuse``, its most prominent face only,
    to be fused with the other images by the caller).
    """
    from ..types import Probe

    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        # Video: one probe per face track, its good faces fused (see footage.video_probes).
        from ..footage import video_probes

        probes = video_probes(path, engine)
        return probes[:1] if fuse else probes
    faces = engine.analyse(path)
    if not faces:
        raise NoFaceError(f"{path}: no face found; a probe image needs at least one face of at least {engine.settings.min_face_px} px")
    if fuse:
        faces = faces[:1]
    name = Path(path).name
    return [Probe(probe_id=f"{name}#face{i}", source=str(path), faces=(face,)) for i, face in enumerate(faces, start=1)]


def cmd_search(args, settings: Settings, out: Output) -> int:
    from ..gallery import Gallery
    from ..search import results_document, search_probes
    from ..types import Probe

    engine = engine_for(settings)
    with Gallery.open(settings) as gallery:
        gallery.check_pack(engine.pack_id, what=f"probe (pack {settings.pack})")
        probes = [p for path in args.probes for p in probes_from_path(path, engine, fuse=args.fuse)]
        if args.fuse:
            probes = [Probe(probe_id="fused", source=";".join(args.probes), faces=tuple(f for p in probes for f in p.faces))]
        results = search_probes(
            gallery, probes, top=args.top, threshold=args.threshold, mode=args.mode,
            exact=True if args.exact else None, pack_default=engine.pack.default_threshold,
        )
    document = results_document(results, top=args.top or settings.top)
    out.emit(document, _lines(document))
    return EXIT_OK


def _lines(document: dict) -> list[str]:
    threshold = document["threshold"]
    lines = [
        f"{len(document['probes'])} probe(s) against {document['gallery_faces']} gallery faces "
        f"({document['method']} search, {document['mode']} mode, threshold {threshold if threshold is not None else 'none'})"
    ]
    for probe in document["probes"]:
        quality = "?" if probe["quality"] is None else f"{probe['quality']:.2f}"
        lines.append(f"probe {probe['probe_id']} (quality {quality}):")
        if not probe["candidates"]:
            lines.append("  no candidates")
        for c in probe["candidates"]:
            flag = {True: "above threshold", False: "", None: ""}[c["above_threshold"]]
            lines.append(f"  {c['rank']:>3}. {c['subject_id']:<24} {c['score']:.3f}  image {c['image_id']:<8} {flag}")
    lines.append("Candidates are leads for trained people to review, not identifications.")
    return lines


def register(commands, add) -> None:
    p = add(commands, "search", cmd_search, "candidate lists for the faces of probe images")
    p.add_argument("probes", nargs="+", metavar="PROBE", help="probe image(s); each face found is a probe")
    p.add_argument("--top", type=int, metavar="K", help="candidates per probe (default: settings top, 20)")
    p.add_argument("--threshold", type=float, metavar="T", help="operating threshold, cosine (default: settings or the pack's)")
    p.add_argument("--mode", choices=["investigation", "identification"], default="investigation",
                   help="investigation: a fixed-length list; identification: only candidates above the threshold")
    p.add_argument("--fuse", action="store_true", help="the images show one person: fuse their most prominent faces into one probe")
    p.add_argument("--exact", action="store_true", help="exact search even where the index would be used")
