"""onnxruntime sessions and the recogniser that runs on them.

This module and the detector modules beside it are the only places that import onnxruntime.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from ..errors import ModelPackError
from .graph import faster_model
from .packs import Preprocessing


def create_session(model: str | os.PathLike | bytes, *, threads: int = 0, rewrite: bool = True) -> ort.InferenceSession:
    """A CPU session. ``threads`` = 0 lets onnxruntime use every core.

    ``rewrite``: a model file's PReLUs run as the same function in operations onnxruntime runs
    faster (:mod:`workbench.models.graph`, in memory; the file is not changed). ``False`` runs
    the graph exactly as stored (benchmarks compare both).

    Raises:
        ModelPackError: when the file is missing or onnxruntime cannot load it.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about initialisers in inputs are noise here
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # onnxruntime's memory pattern pre-plans one block per input shape: for the rewritten SFace
    # at a batch of 32 that held 930 MB against 614 without it, at the same speed (YuNet's
    # speed is the same either way too).
    options.enable_mem_pattern = False
    try:
        source = model if isinstance(model, bytes) else os.fspath(model)
        if rewrite and not isinstance(model, bytes):
            source = _faster_or_as_stored(source)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        name = "<model bytes>" if isinstance(model, bytes) else os.fspath(model)
        raise ModelPackError(f"{name}: onnxruntime cannot load this model ({exc})") from exc


def _faster_or_as_stored(path: str) -> str | bytes:
    """The rewritten model's bytes, or ``path`` itself when there is nothing to rewrite or onnx
    cannot parse the file (onnxruntime then gives the error, named, as for any bad file)."""
    try:
        return faster_model(path) or path
    except Exception:  # noqa: BLE001 - a file onnx cannot read is reported by onnxruntime below
        return path


class OnnxRecogniser:
    """Embeds aligned face crops with an ONNX recogniser.

    Args:
        session: the onnxruntime session; its single input is (N, 3, S, S).
        preprocessing: pixel normalisation for this model.
    """

    def __init__(self, session: ort.InferenceSession, preprocessing: Preprocessing):
        self.session = session
        self.preprocessing = preprocessing
        model_input = session.get_inputs()[0]
        self.input_name = model_input.name
        shape = model_input.shape
        if len(shape) != 4 or shape[2] != shape[3] or not isinstance(shape[2], int):
            raise ModelPackError(f"recogniser input must be (N, 3, S, S), got {shape}")
        self.input_size: int = shape[2]
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) else None
        self.embedding_dim: int = int(session.get_outputs()[0].shape[-1])

    def raw_embed(self, tensor: np.ndarray) -> np.ndarray:
        """The bare model call: (N, 3, S, S) float32 -> (N, D) float32, not normalised."""
        if self.fixed_batch == 1 and len(tensor) > 1:
            return np.concatenate([self.raw_embed(tensor[i : i + 1]) for i in range(len(tensor))])
        return self.session.run(None, {self.input_name: tensor})[0].reshape(len(tensor), -1)

    def embed(self, crops_rgb: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned crops -> (N, D) float32 L2-normalised embeddings."""
        if crops_rgb.ndim != 4 or crops_rgb.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"crops must be (N, {self.input_size}, {self.input_size}, 3), got {crops_rgb.shape}"
            )
        if len(crops_rgb) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        features = self.raw_embed(self.preprocessing.to_tensor(crops_rgb)).astype(np.float32)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return features / np.maximum(norms, 1e-12)
