"""Editing a .tflite file through the FlatBuffers object API of the TFLite schema."""

from __future__ import annotations

import functools

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

# Builtin op code -> its name in the schema (e.g. "FULLY_CONNECTED").
OP_NAMES = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}


def unpack(flatbuffer: bytes) -> schema.ModelT:
    """The .tflite `flatbuffer` as the schema's mutable object tree."""
    return schema.ModelT.InitFromPackedBuf(flatbuffer, 0)


def pack(model: schema.ModelT, size_hint: int = 0) -> bytes:
    """The .tflite bytes of an object tree from `unpack` (`size_hint`: the expected size)."""
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _constant_key(model: schema.ModelT, tensor: schema.TensorT):
    """What makes two constant tensors interchangeable (None for a tensor with no data)."""
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    q = tensor.quantization

    def values(name):
        value = getattr(q, name, None) if q is not None else None
        return (
            None if value is None else tuple(value.tolist() if hasattr(value, "tolist") else value)
        )

    return (
        tensor.buffer,
        tensor.type,
        tuple(tensor.shape.tolist()),
        *(values(name) for name in ("scale", "zeroPoint", "min", "max")),
        getattr(q, "quantizedDimension", 0) if q is not None else 0,
    )


def _renumbered(moved: dict, indices):
    return None if indices is None else [moved[int(i)] for i in indices]


def share_constants(model: schema.ModelT) -> None:
    """Hold each constant tensor of `model` (from `unpack`) once per subgraph, in place.

    An unrolled loop reads the same weights at every step. The converter gives each read its
    own tensor over the one buffer, and every such tensor repeats the weight's quantisation
    parameters (a scale and a zero point per output channel): in an int8 encoder unrolled
    over 64 steps that is megabytes. Ops may share a constant input tensor, so the copies
    are dropped and the ops read the first one."""
    for index, subgraph in enumerate(model.subgraphs):
        first, remap = {}, {}
        for i, tensor in enumerate(subgraph.tensors):
            key = _constant_key(model, tensor)
            remap[i] = first.setdefault(key, i) if key is not None else i
        kept = sorted(set(remap.values()))
        if len(kept) == len(subgraph.tensors):
            continue
        new_index = {old: new for new, old in enumerate(kept)}
        moved = {old: new_index[remap[old]] for old in remap}
        moved[-1] = -1  # an omitted optional input
        renumbered = functools.partial(_renumbered, moved)
        subgraph.tensors = [subgraph.tensors[i] for i in kept]
        subgraph.inputs, subgraph.outputs = (
            renumbered(subgraph.inputs),
            renumbered(subgraph.outputs),
        )
        for op in subgraph.operators:
            op.inputs, op.outputs = renumbered(op.inputs), renumbered(op.outputs)
            op.intermediates = renumbered(op.intermediates)
        for signature in model.signatureDefs or ():
            if signature.subgraphIndex == index:
                for entry in (*(signature.inputs or ()), *(signature.outputs or ())):
                    entry.tensorIndex = moved[entry.tensorIndex]
