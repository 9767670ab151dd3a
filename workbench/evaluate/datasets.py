"""Labelled images on disk: pairs CSVs (columns a, b, same), folders with one sub-folder per
identity, and balanced same/different pairs drawn from such a folder with a fixed seed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from ..images import IMAGE_SUFFIXES


def read_pairs(pairs_csv: Path, images_dir: Path) -> list[tuple[Path, Path, int]]:
    """Rows of a pairs CSV (columns a, b, same) with paths resolved against ``images_dir``."""
    pairs_csv, images_dir = Path(pairs_csv), Path(images_dir)
    if not pairs_csv.exists():
        raise WorkbenchError(f"{pairs_csv}: no such pairs file")
    if not pairs_csv.is_file():
        raise WorkbenchError(f"{pairs_csv}: not a file; expected a CSV with columns a,b,same")
    if not images_dir.is_dir():
        raise WorkbenchError(f"{images_dir}: not a folder; --images names the folder the pairs' paths are relative to")
    try:
        with open(pairs_csv, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"a", "b", "same"} - set(reader.fieldnames or [])
            if missing:
                raise WorkbenchError(f"{pairs_csv}: missing column(s) {', '.join(sorted(missing))}; expected a,b,same")
            pairs = []
            for line, row in enumerate(reader, start=2):
                values = {key: row.get(key) for key in ("a", "b", "same")}
                if any(v is None for v in values.values()) or None in row:
                    raise WorkbenchError(f"{pairs_csv}, line {line}: has {len(row) - (None in row)} fields, expected a,b,same")
                if values["same"].strip() not in {"0", "1"}:
                    raise WorkbenchError(f"{pairs_csv}, line {line}: same must be 1 or 0, got {values['same']!r}")
                if not values["a"].strip() or not values["b"].strip():
                    raise WorkbenchError(f"{pairs_csv}, line {line}: an image path is empty")
                pairs.append((images_dir / values["a"].strip(), images_dir / values["b"].strip(), int(values["same"])))
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{pairs_csv}: not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise WorkbenchError(f"{pairs_csv}: not a readable CSV ({exc})") from exc
    except OSError as exc:
        raise WorkbenchError(f"{pairs_csv}: cannot be read ({exc.strerror or exc})") from exc
    if not pairs:
        raise WorkbenchError(f"{pairs_csv}: holds no pairs")
    return pairs


def labelled_images(folder: Path) -> list[tuple[str, Path]]:
    """(identity, image path) for every image in each sub-folder of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not a folder; expected one sub-folder per identity")
    try:
        items = [
            (sub.name, path)
            for sub in sorted(p for p in folder.iterdir() if p.is_dir())
            for path in sorted(sub.iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
    except OSError as exc:
        raise WorkbenchError(f"{exc.filename or folder}: cannot list the folder ({exc.strerror or exc})") from exc
    if not items:
        raise WorkbenchError(f"{folder}: no images found in sub-folders (one sub-folder per identity)")
    return items


def make_pairs(folder: Path, *, per_identity: int = 30, seed: int = 0) -> list[tuple[str, str, int]]:
    """Draw balanced same/different pairs (relative paths) from a folder of identity sub-folders.

    Up to ``per_identity`` same-person pairs per identity and as many different-person pairs,
    drawn with a fixed seed so anyone can redraw the same list.
    """
    rng = np.random.default_rng(seed)
    items = labelled_images(folder)
    by_identity: dict[str, list[str]] = {}
    for label, path in items:
        by_identity.setdefault(label, []).append(str(path.relative_to(folder)))
    labels = sorted(by_identity)
    if len(labels) < 2:
        raise WorkbenchError(
            f"{folder}: holds images of {len(labels)} identity ({labels[0]}); different-person pairs need at least two "
            "sub-folders (one per identity)"
        )
    if all(len(files) < 2 for files in by_identity.values()):
        raise WorkbenchError(f"{folder}: no identity has two images; same-person pairs need at least two images in a sub-folder")
    if per_identity < 1:
        raise WorkbenchError(f"pairs per identity must be at least 1, got {per_identity}")
    pairs = []
    for label in labels:
        files = by_identity[label]
        combos = [(files[i], files[j]) for i in range(len(files)) for j in range(i + 1, len(files))]
        for k in rng.permutation(len(combos))[:per_identity]:
            pairs.append((*combos[k], 1))
        others = [other for other in labels if other != label]
        for _ in range(min(per_identity, len(combos))):
            other = others[rng.integers(len(others))]
            pairs.append((files[rng.integers(len(files))], by_identity[other][rng.integers(len(by_identity[other]))], 0))
    return pairs
