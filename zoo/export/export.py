"""`export_model`: SavedModel and TFLite files, parity checks and a manifest, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from zoo.export import saved_model, tflite
from zoo.export.metadata import JSON_ENTRY, with_metadata
from zoo.export.module import InferenceModule
from zoo.export.parity import check_parity, parity, quality_error, quality_loss
from zoo.files import read_json

FORMATS = ("saved_model", "tflite")
MANIFEST = "manifest.json"
# What of the manifest each .tflite file carries as metadata (`zoo.export.metadata`).
DEVICE_KEYS = ("format", "kind", "model", "cells", "signatures", "metadata")
EXPORT_FORMAT = "lstm-zoo-export"  # the manifest's "format": what marks a folder as an export
_CHOOSE = "choose an empty or new --out_dir"


def tflite_filename(quantize: str) -> str:
    """The file name of a TFLite export: model.tflite for float32, else model_<quantize>.tflite."""
    return "model.tflite" if quantize == "none" else f"model_{quantize}.tflite"


def export_kind(manifest) -> str | None:
    """The kind of export ("model", "seq2seq") a manifest describes; None if not a zoo one."""
    if not isinstance(manifest, dict):
        return None
    if manifest.get("format") == EXPORT_FORMAT:
        return manifest.get("kind")
    signatures = manifest.get("signatures")  # manifests written before "format" and "kind"
    if not isinstance(signatures, dict) or not isinstance(manifest.get("files"), dict):
        return None
    if {"encode", "decode_step"} <= set(signatures) and "start_id" in manifest:
        return "seq2seq"
    if {"step", "predict"} <= set(signatures) and "cells" in manifest:
        return "model"
    return None


def _extras_of(manifest) -> set[str]:
    """The extra files (e.g. a tokenizer) an export's manifest says it wrote."""
    names = manifest.get("extra_files")
    metadata = manifest.get("metadata")
    names = list(names) if isinstance(names, list) else []
    if isinstance(metadata, dict):
        names.append(metadata.get("tokenizer"))  # older seq2seq manifests
    return {n for n in names if isinstance(n, str) and n and os.sep not in n}


def _is_export_file(folder, name, extras) -> bool:
    path = os.path.join(folder, name)
    if os.path.islink(path):
        return False
    if name == "saved_model":
        return os.path.isdir(path)
    return os.path.isfile(path) and (name == MANIFEST or name.endswith(".tflite")
                                     or name in extras)


def check_out_dir(path, kind, extra_files=()) -> bool:
    """Refuse (ValueError) an export directory that is not new, empty or a previous export.

    A previous export of the same `kind` ("model" or "seq2seq"), recognised by its manifest and
    holding only what an export writes (saved_model/, *.tflite, manifest.json, `extra_files`),
    may be replaced: returns True for one. Nothing else is ever replaced.
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return False
    if not os.path.isdir(path):
        raise ValueError(f"{path}: not a directory; {_CHOOSE}")
    names = sorted(os.listdir(path))
    if not names:
        return False
    manifest = None
    if os.path.isfile(os.path.join(path, MANIFEST)):
        with contextlib.suppress(ValueError, OSError):
            manifest = read_json(os.path.join(path, MANIFEST), expect=dict)
    found = export_kind(manifest)
    extras = set(extra_files) | (_extras_of(manifest) if found else set())
    strangers = [name for name in names if not _is_export_file(path, name, extras)]
    if strangers:
        raise ValueError(f"{path}: holds files that are not an lstm-zoo export "
                         f"(e.g. {strangers[0]}); {_CHOOSE}")
    if found is None:
        raise ValueError(f"{path}: holds no lstm-zoo export {MANIFEST}; {_CHOOSE}")
    if found != kind:
        raise ValueError(f"{path}: holds an lstm-zoo {found} export, not a {kind} one; {_CHOOSE}")
    return True


@contextlib.contextmanager
def atomic_directory(path, kind, extra_files=()):
    """Yield a fresh directory beside `path` that takes its place once the block succeeds.

    `path` must pass `check_out_dir` (checked before and again at the end); a previous export
    there is moved aside, and deleted only once the new one is in place.
    """
    check_out_dir(path, kind, extra_files)
    target = os.path.realpath(path)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        check_out_dir(path, kind, extra_files)  # nobody wrote there meanwhile
        if not os.path.lexists(target):
            os.replace(staging, target)
            return
        old = tempfile.mkdtemp(prefix=".export-old-", dir=parent)
        previous = os.path.join(old, "previous")
        os.replace(target, previous)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(previous, target)
            os.rmdir(old)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _as_list(value, name, allowed):
    values = [value] if isinstance(value, str) else list(value)
    for v in values:
        if v not in allowed:
            raise ValueError(
                f"Unknown {name}. Expected some of {', '.join(allowed)}. Received: {name}={v!r}"
            )
    return values


def _parity_inputs(module, representative_data, seed=0):
    """Input sequences for parity: the representative data, or random ones if none is given."""
    spec = module.predict.input_signature[0]
    if representative_data is not None:
        data = [np.asarray(x) for x in representative_data]
        for x in data:
            if tuple(x.shape) != tuple(spec.shape):
                raise ValueError(
                    f"representative_data items must be shaped like the `predict` input "
                    f"{tuple(spec.shape)}. Received: shape={tuple(x.shape)}"
                )
        return data
    rng = np.random.default_rng(seed)
    if spec.dtype.is_integer:
        return [rng.integers(0, 2, spec.shape).astype(np.int32)]
    return [rng.standard_normal(spec.shape).astype(np.float32)]


def _signature_shapes(function):
    concrete = function.get_concrete_function()
    inputs = {s.name: {"shape": s.shape.as_list(), "dtype": s.dtype.name}
              for s in function.input_signature}
    outputs = {name: {"shape": s.shape.as_list(), "dtype": s.dtype.name}
               for name, s in concrete.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs}


def write_gated(staging, manifest, rejected, quantize, flatbuffer, report, max_quality_loss,
                allow_quality_loss, **details) -> None:
    """Write a converted file into `staging` and describe it in `manifest["files"]`, unless
    it is quantised and loses more than `max_quality_loss` (its `parity` report's score):
    then its score goes into `rejected`, and the file is written only with
    `allow_quality_loss` (else it is described in `manifest["rejected"]`)."""
    name = tflite_filename(quantize)
    entry = {"quantize": quantize, "bytes": len(flatbuffer), "ops": tflite.ops_used(flatbuffer),
             **details, "parity": report,
             "quality_metric": report.get("score", {}).get("metric"),
             "quality_loss": quality_loss(report)}
    loss = entry["quality_loss"]
    if quantize != "none" and loss is not None and loss > max_quality_loss:
        rejected[name] = report["score"]
        if not allow_quality_loss:
            manifest["rejected"][name] = entry
            return
    with open(os.path.join(staging, name), "wb") as f:
        f.write(flatbuffer)
    manifest["files"][name] = entry


def export_model(
    model,
    out_dir: str | os.PathLike,
    format: str | Sequence[str] = FORMATS,
    quantize: str | Sequence[str] = "none",
    representative_data: Sequence[np.ndarray] | None = None,
    batch_size: int = 1,
    seq_len: int = 32,
    tolerance: float = 1e-4,
    metadata: dict | None = None,
    fuse: str = "all",
    max_quality_loss: float = 0.05,
    allow_quality_loss: bool = False,
) -> dict:
    """Export a Keras recurrent model for serving and for mobile; returns the manifest.

    Writes into `out_dir` (new, empty or an earlier export, replaced once everything succeeded;
    anything else is refused before any work, see `check_out_dir`):
        saved_model/                 `step` and `predict` serving signatures
        model.tflite                 float32, builtin ops only; LSTM layers fused where the
                                     TFLite op computes them (see `zoo.export.fused`)
        model_<quantize>.tflite      one per extra quantisation (dynamic fuses plain LSTM
                                     layers only, float16 as float32, int8 none: int8
                                     matmuls, float32 gate math, see `tflite.convert`)
                                     (every .tflite file also holds the manifest's cells,
                                     signatures and metadata, see `zoo.export.metadata`)
        manifest.json                cells, signatures with shapes, ops, sizes, parity, metadata

    Every .tflite file is run in LiteRT on `representative_data` and compared with
    `model(x)`; the float32 file must match within `tolerance` or the export fails. A quantised
    file is scored on the same data (bits per token for a token model, nats per step for a
    model that predicts its next binary frame, else the KL divergence from Keras's outputs in
    bits per step, see `parity`): one that loses more than `max_quality_loss` against Keras
    is not written (unless `allow_quality_loss`); the others are, and `QualityError` then
    names it, by how much, and what to try.

    Args:
        model: a Keras model of step-wise and recurrent layers (see `InferenceModule`).
        out_dir: the export directory.
        format: "saved_model", "tflite", or both (a list).
        quantize: one or several of "none", "dynamic", "float16", "int8".
        representative_data: real input sequences shaped (batch_size, seq_len[, features]),
            used for int8 calibration and parity; random tokens/features if None (int8 needs
            real data).
        batch_size, seq_len: the static shapes of the signatures.
        tolerance: the largest float32 max-abs difference from Keras accepted.
        metadata: JSON-serialisable extras for the device (vocabulary, task, decoding).
        fuse: "all", "standard" or "none": which LSTM layers become fused ops in the float
            files (see `InferenceModule`).
        max_quality_loss: what a quantised file may lose against Keras, in its score's unit.
        allow_quality_loss: write such files anyway (the manifest records their loss).
    """
    if hasattr(model, "encode") and hasattr(model, "decode_step"):
        raise ValueError(f"Model {model.name!r} is an encoder-decoder: export it with "
                         "`zoo.export.export_seq2seq`")
    formats = _as_list(format, "format", FORMATS)
    quantizations = _as_list(quantize, "quantize", tflite.QUANTIZATIONS)
    check_out_dir(out_dir, "model")  # before any conversion work
    modules = {}

    def module_for(fuse, share_weights=True):
        key = fuse, share_weights
        if key not in modules:
            modules[key] = InferenceModule(model, batch_size, seq_len, fuse, share_weights)
        return modules[key]

    module = module_for(fuse)
    sequences = _parity_inputs(module, representative_data)
    calibration = None if representative_data is None else sequences  # a list, reusable
    manifest = {
        "format": EXPORT_FORMAT,
        "kind": "model",
        "model": model.name,
        "cells": [
            {"cell": name, "units": units, "fused": fused, "state_shapes": list(map(list, shapes))}
            for name, units, fused, shapes in module.layout
        ],
        "signatures": {name: _signature_shapes(getattr(module, name))
                       for name in module.signatures()},
        "files": {},
        "rejected": {},
        "quality_gate": {"max_loss": max_quality_loss, "allowed": bool(allow_quality_loss),
                         "unit": "bits per token; nats per step for frame models; the "
                                 "model's own quality_score (a forecaster's weighted "
                                 "quantile loss); bits per step of KL divergence from Keras "
                                 "for others"},
        "metadata": metadata or {},
    }
    rejected = {}
    phases = ("saved_model" in formats) + len(quantizations) * ("tflite" in formats)
    with atomic_directory(out_dir, "model") as staging, tqdm(
            total=phases, desc="export", unit="file", disable=None, leave=False) as progress:
        if "saved_model" in formats:
            progress.set_postfix_str("saved_model")
            path = os.path.join(staging, "saved_model")
            plain = module_for("none")
            saved_model.save(plain, path)
            manifest["files"]["saved_model"] = {
                "reload_max_abs_diff": saved_model.reload_difference(plain, path, sequences[0]),
            }
            progress.update()
        if "tflite" in formats:
            for q in quantizations:
                name = tflite_filename(q)
                progress.set_postfix_str(name + (" (calibrating)" if q == "int8" else ""))
                source = module
                if q == "dynamic":
                    # The quantizers know the converter's own fused op only, and quantise
                    # the step's and the op's copies of the weights separately.
                    surgery = not all(spec.standard for spec in module.fused_specs)
                    source = module_for("standard" if surgery else fuse, share_weights=False)
                elif q == "int8":  # unfused: its matmuls become int8 FULLY_CONNECTED ops
                    source = module_for("none", share_weights=False)
                flatbuffer = with_metadata(tflite.convert(source, q, calibration),
                                           {JSON_ENTRY: {k: manifest[k] for k in DEVICE_KEYS}})
                report = parity(model, flatbuffer, sequences)
                if q == "none":
                    check_parity(report, tolerance, name)
                progress.update()
                write_gated(staging, manifest, rejected, q, flatbuffer, report, max_quality_loss,
                            allow_quality_loss, fused_lstm_layers=len(source.fused_specs))
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
    if rejected and not allow_quality_loss:
        raise quality_error(rejected, max_quality_loss, out_dir)
    return manifest
