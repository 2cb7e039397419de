"""Editing a .tflite file through the FlatBuffers object API of the TFLite schema."""

from __future__ import annotations

import flatbuffers
from ai_edge_litert import schema_py_generated as schema


def unpack(flatbuffer: bytes) -> schema.ModelT:
    """The .tflite `flatbuffer` as the schema's mutable object tree."""
    return schema.ModelT.InitFromPackedBuf(flatbuffer, 0)


def pack(model: schema.ModelT, size_hint: int = 0) -> bytes:
    """The .tflite bytes of an object tree from `unpack` (`size_hint`: the expected size)."""
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
