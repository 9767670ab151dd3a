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


def faster_model(path: str | os.PathLike) -> bytes | None:
    """The model at ``path`` with its PReLUs rewritten (serialised), or None when it has none
    (load the file as it is). Cached per file version."""
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = onnx.load(os.fspath(path))
    result = model.SerializeToString() if rewritten_prelu(model) else None
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def prelu_count(model_bytes: bytes) -> int:
    """PReLU nodes in a serialised model (tests and benchmarks)."""
    return sum(node.op_type == "PRelu" for node in onnx.load_from_string(model_bytes).graph.node)
