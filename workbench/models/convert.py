"""Turn a block-quantised ONNX model into a plain float32 one that onnxruntime runs fast.

The OpenCV Zoo int8 "block-quantised" models store each weight as ``int8 -> DequantizeLinear
(block_size) -> Reshape -> Conv``. Older onnxruntime releases reject the ``block_size`` attribute
and even where it loads, dequantising on every call wastes time. We evaluate those constant
sub-graphs once, with ONNX's own reference implementation of each operator, and store the float32
result as an initialiser. Then we drop graph inputs nothing reads (the old MXNet export lists its
weights as inputs) and make the batch dimension dynamic so crops can be embedded in batches.

The result is numerically the dequantised model (same weights, float32 arithmetic); the sha256 of
the written file identifies it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

#: operators whose output is folded into an initialiser when all their inputs are constant.
FOLDABLE_OPS = frozenset({"DequantizeLinear", "Reshape", "Cast", "Identity"})
BATCH_DIM = "batch"


def fold_constant_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of ``model`` with constant dequantise/reshape chains folded into float32."""
    model = _copy(model)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept_nodes = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type in FOLDABLE_OPS and inputs and all(name in constants for name in inputs):
            values = _evaluate(node, [constants[name] for name in node.input], opset)
            constants.update(zip(node.output, values))
        else:
            kept_nodes.append(node)
    del graph.node[:]
    graph.node.extend(kept_nodes)

    needed = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(np.ascontiguousarray(value), name)
        for name, value in constants.items()
        if name in needed
    )
    initialiser_names = {init.name for init in graph.initializer}
    data_inputs = [i for i in graph.input if i.name in needed and i.name not in initialiser_names]
    del graph.input[:]
    graph.input.extend(data_inputs)
    del graph.value_info[:]  # shapes inferred for the old graph may be stale
    return model


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Let the first dimension of every input and output vary, and reshapes follow it."""
    model = _copy(model)
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = BATCH_DIM
    # A Reshape to a constant shape that starts with 1 pins the batch: 0 means "copy that dim".
    initialisers = {init.name: init for init in graph.initializer}
    shared_shapes: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initialisers:
            continue
        shape = numpy_helper.to_array(initialisers[node.input[1]])
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
            name = shared_shapes.get(node.input[1])
            if name is None:
                name = f"{node.input[1]}_dynamic_batch"
                dynamic = shape.copy()
                dynamic[0] = 0
                graph.initializer.append(numpy_helper.from_array(dynamic, name))
                shared_shapes[node.input[1]] = name
            node.input[1] = name
    return model


def convert_to_float32(source_bytes: bytes) -> bytes:
    """Load an ONNX file's bytes, fold, make the batch dynamic, check, and serialise."""
    model = onnx.load_from_string(source_bytes)
    model = make_batch_dynamic(fold_constant_weights(model))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _evaluate(node: onnx.NodeProto, values: list[np.ndarray], opset: int) -> list[np.ndarray]:
    names = [f"in{i}" for i in range(len(values))]
    single = helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))])
    single.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [single],
        "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in zip(names, values)],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in single.output],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    outputs = ReferenceEvaluator(model).run(None, dict(zip(names, values)))
    return [np.asarray(o) for o in outputs]


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
