"""Metadata inside a .tflite file, so that one file is enough on the device.

A TFLite model holds named metadata buffers (`Model.metadata`, the schema's `Metadata` table:
a name and a buffer index) that runtimes ignore and apps read with the FlatBuffers API. The
export writes two: `lstm_zoo.json` (the manifest's metadata: task, config, vocabulary or the
tokenizer's token ids, the signatures' shapes) and, for a translator, `subwords.model` (the
SentencePiece model's bytes).

    entries = zoo.export.read_metadata("model.tflite")      # {name: bytes}
    info = json.loads(entries["lstm_zoo.json"])
"""

from __future__ import annotations

import json
import os

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from zoo.export.flatbuffer import pack, unpack

JSON_ENTRY = "lstm_zoo.json"


def with_metadata(flatbuffer: bytes, entries: dict[str, bytes | dict]) -> bytes:
    """`flatbuffer` with `entries` (name -> bytes, or a dict stored as JSON) added to its
    metadata; an entry of the same name is replaced."""
    model = unpack(flatbuffer)
    kept = [m for m in (model.metadata or []) if m.name.decode() not in entries]
    for name, value in entries.items():
        data = json.dumps(value).encode() if isinstance(value, dict) else bytes(value)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name.encode(), len(model.buffers) - 1
        kept.append(entry)
    model.metadata = kept
    return pack(model, len(flatbuffer))


def read_metadata(source: bytes | str | os.PathLike) -> dict[str, bytes]:
    """The metadata entries of a .tflite flatbuffer or file, name -> bytes."""
    if not isinstance(source, bytes):
        with open(source, "rb") as f:
            source = f.read()
    model = schema.Model.GetRootAs(source, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        data = model.Buffers(entry.Buffer()).DataAsNumpy()
        entries[entry.Name().decode()] = data.tobytes() if isinstance(data, np.ndarray) else b""
    return entries
