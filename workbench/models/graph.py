"""Graph rewrites that make a model run faster on onnxruntime's CPU provider and compute the same function.

PReLU (``y = x if x > 0 else slope * x``, one slope per channel) is the activation of SFace and
of many MobileFaceNets. onnxruntime's CPU kernel for it branches per element and runs outside
its blocked (NCHWc) convolution layout, so every PReLU also pays two layout reorders: with real
faces SFace spent more time in its 27 PReLUs and their reorders than in its convolutions. The
same function written as ``slope * x + (1 - slope) * relu(x)`` is made of operations the
optimiser keeps in the blocked layout. On this machine SFace then embeds a face in 9.8 ms
instead of 16.3 (two threads; 17.5 instead of 32.4 on one), and the embeddings agree with the
original graph's to float rounding (cosine 0.99999994 or more on the ISS portraits: both terms
are exact for negative inputs, and for positive ones ``s * x + (1 - s) * x`` differs from ``x``
by at most an ulp or two). ``.venv/bin/python bench/bench_engine.py`` prints both side by side.

Model files are never changed: the rewrite happens in memory when a session is created, so a
pack's files, hashes and identity stay what was imported.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import onnx
from onnx import helper, numpy_helper

#: rewritten models kept in memory, by (path, size, mtime): an engine's lanes load the same file.
_CACHE_SIZE = 4
_cache: OrderedDict[tuple, bytes | None] = OrderedDict()
_cache_lock = threading.Lock()


def rewritten_prelu(model: onnx.ModelProto) -> int:
    """Replace, in place, each PReLU whose slope is a constant of the graph by
    ``slope * x + (1 - slope) * relu(x)``; returns how many were replaced."""
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    nodes, replaced = [], 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in constants:
            nodes.append(node)
            continue
        x, slope = node.input
        out = node.output[0]
        base = f"{node.name or out}__prelu"
        slope_values = numpy_helper.to_array(constants[slope])
        graph.initializer.append(numpy_helper.from_array((1 - slope_values).astype(slope_values.dtype), f"{base}_one_minus_slope"))
        nodes += [
            helper.make_node("Relu", [x], [f"{base}_positive"], name=f"{base}_relu"),
            helper.make_node("Mul", [x, slope], [f"{base}_sloped"], name=f"{base}_mul_slope"),
            helper.make_node("Mul", [f"{base}_positive", f"{base}_one_minus_slope"], [f"{base}_kept"], name=f"{base}_mul_rest"),
            helper.make_node("Add", [f"{base}_sloped", f"{base}_kept"], [out], name=f"{base}_add"),
        ]
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(nodes)
    return replaced


def any_input_size(model: onnx.ModelProto) -> bool:
    """Free, in place, the fixed height and width of a fully convolutional detector's single
    (N, 3, H, W) input (and the anchor counts of its outputs), so it runs any canvas whose sides
    are multiples of its coarsest stride. True when done.

    Done only when nothing in the graph depends on the size: every Reshape target is a constant
    holding a -1 (the anchors), every Resize scales by constant factors, and no intermediate
    shape is recorded. YuNet 2023mar qualifies (its 640x640 input is only what it was exported
    with: OpenCV's FaceDetectorYN runs the same file at any size); on a 448x640 canvas its scores
    agree with a 640x640 canvas holding the same picture to 0.01 (at the padded edge) and the
    call costs two thirds.
    """
    graph = model.graph
    if len(graph.input) != 1:
        return False
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not (dims[2].HasField("dim_value") and dims[3].HasField("dim_value")):
        return False
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Reshape" and not (node.input[1] in constants and -1 in constants[node.input[1]].tolist()):
            return False
        if node.op_type == "Resize" and (len(node.input) > 3 and node.input[3] or len(node.input) < 3 or node.input[2] not in constants):
            return False
        if node.op_type in ("Flatten", "Gemm", "MatMul", "Shape", "ConstantOfShape", "Expand", "Slice", "Tile"):
            return False
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.output:
        shape = output.type.tensor_type.shape.dim
        if len(shape) == 3:
            shape[1].dim_param = "anchors"
    del graph.value_info[:]
    return True


def faster_model(path: str | os.PathLike, *, free_input_size: bool = False) -> bytes | None:
    """The model at ``path`` with its PReLUs rewritten and (``free_input_size``, detectors)
    its input size freed where that is safe (:func:`any_input_size`), serialised; None when
    neither applies (load the file as it is). Cached per file version."""
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns, free_input_size)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = onnx.load(os.fspath(path))
    changed = rewritten_prelu(model) > 0
    changed = (free_input_size and any_input_size(model)) or changed
    result = model.SerializeToString() if changed else None
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def prelu_count(model_bytes: bytes) -> int:
    """PReLU nodes in a serialised model (tests and benchmarks)."""
    return sum(node.op_type == "PRelu" for node in onnx.load_from_string(model_bytes).graph.node)
