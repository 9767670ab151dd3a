"""Importing a detector + recogniser folder, or the zip InsightFace publishes, as a workspace pack.

Roles are identified by loading each ONNX file through :mod:`workbench.models.loading`
(InsightFace's ``model_zoo`` routes a file to its detector or recogniser class), so this module
sits above both the manifest code (:mod:`workbench.models.packs`) and the loaders.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import ModelPackError
from ..fileio import sha256_file
from .loading import classify_onnx
from .packs import (
    DEFAULT_PACK,
    IMPORT_HINT,
    INSIGHTFACE_LICENCE_NOTE,
    MANIFEST,
    PackInfo,
    Preprocessing,
    _ensure,
    _parse_manifest,
    _write_manifest,
)


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
