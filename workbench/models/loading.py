"""Turning pack files into running models; the one place that imports insightface."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import onnx

from ..errors import ModelPackError
from .detectors import InsightFaceDetector, YuNetDetector
from .packs import PackInfo, verify_pack
from .runtime import OnnxRecogniser, Preprocessing, create_session

YUNET_OUTPUTS = {"cls_8", "obj_8", "bbox_8", "kps_8"}


def _onnx_io(path: Path) -> tuple[list, list[str]]:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelPackError(f"{path}: not a readable ONNX model ({exc})") from exc
    initialisers = {i.name for i in model.graph.initializer}
    inputs = [
        [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
        if i.name not in initialisers
    ]
    return inputs, [o.name for o in model.graph.output]


def classify_onnx(path: Path) -> dict | None:
    """What role an ONNX file can play in a pack, or None (landmark, attribute models...).

    YuNet is recognised by its output names (InsightFace would mistake it for SCRFD); other
    detectors and recognisers are routed by ``insightface.model_zoo``, as InsightFace does.
    """
    inputs, outputs = _onnx_io(path)
    if YUNET_OUTPUTS <= set(outputs):
        return {"role": "detector", "kind": "yunet"}
    model = _insightface_model(path)
    task = getattr(model, "taskname", None)
    if task == "detection" and getattr(model, "use_kps", False):
        return {"role": "detector", "kind": "insightface"}
    if task == "recognition":
        shape = model.input_shape
        if len(shape) != 4 or shape[2] != shape[3]:
            return None
        return {
            "role": "recogniser",
            "kind": "arcface",
            "embedding_dim": int(model.output_shape[-1]),
            "preprocessing": Preprocessing("RGB", float(model.input_mean), float(model.input_std)),
        }
    return None


def _insightface_model(path: Path):
    from insightface import model_zoo  # heavy; only when a pack is imported or loaded

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # model_zoo prints progress
            return model_zoo.get_model(str(path), download=False)
    except Exception as exc:  # insightface raises AssertionError, ValueError, onnxruntime errors
        raise ModelPackError(f"{path}: InsightFace cannot load this model ({exc})") from exc


def load_models(info: PackInfo, *, threads: int = 0, check_files: bool = True, rewrite: bool = True):
    """(detector, recogniser) ready to run.

    Args:
        threads: onnxruntime intra-op threads per session, 0 = all cores.
        check_files: recompute file hashes first, so a corrupt or swapped file is refused.
        rewrite: run PReLUs as the same function in faster operations (see
            :mod:`workbench.models.graph`); False runs the graphs exactly as stored.

    Raises:
        ModelPackError: a file is missing, changed since import, or will not load.
    """
    if check_files:
        problems = verify_pack(info)
        if problems:
            raise ModelPackError(f"model pack {info.name!r} is damaged: {'; '.join(problems)}; re-import it")
    detector_path = info.folder / info.detector_file
    if info.detector_kind == "yunet":
        detector = YuNetDetector(create_session(detector_path, threads=threads, rewrite=rewrite))
    elif info.detector_kind == "insightface":
        # InsightFace's model gives the layout; the detector runs on a session of our own, with our threads.
        detector = InsightFaceDetector(_insightface_model(detector_path), create_session(detector_path, threads=threads, rewrite=rewrite))
    else:
        raise ModelPackError(f"{info.folder}: unknown detector kind {info.detector_kind!r}")
    recogniser = OnnxRecogniser(create_session(info.folder / info.recogniser_file, threads=threads, rewrite=rewrite), info.preprocessing)
    if recogniser.embedding_dim != info.embedding_dim:
        raise ModelPackError(
            f"{info.folder / info.recogniser_file}: gives {recogniser.embedding_dim}-d embeddings, "
            f"pack.json says {info.embedding_dim}"
        )
    return detector, recogniser
