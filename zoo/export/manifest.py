"""The export folder and its manifest: what may be replaced, how it is written (atomically), and
how each converted file is described or rejected by the quality gate."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import numpy as np

from zoo.export import conversion
from zoo.export.parity import quality_loss
from zoo.files import read_json

FORMATS = ("saved_model", "tflite")
MANIFEST = "manifest.json"
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
    return os.path.isfile(path) and (name == MANIFEST or name.endswith(".tflite") or name in extras)


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
        raise ValueError(
            f"{path}: holds files that are not an lstm-zoo export (e.g. {strangers[0]}); {_CHOOSE}"
        )
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


def as_list(value, name, allowed):
    """`value` (one or a list) as a list, each checked against `allowed`."""
    values = [value] if isinstance(value, str) else list(value)
    for v in values:
        if v not in allowed:
            raise ValueError(
                f"Unknown {name}. Expected some of {', '.join(allowed)}. Received: {name}={v!r}"
            )
    return values


def parity_inputs(module, representative_data, seed=0):
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


def signature_shapes(function):
    """{inputs, outputs} of a tf.function signature: name -> shape and dtype."""
    concrete = function.get_concrete_function()
    inputs = {
        s.name: {"shape": s.shape.as_list(), "dtype": s.dtype.name}
        for s in function.input_signature
    }
    outputs = {
        name: {"shape": s.shape.as_list(), "dtype": s.dtype.name}
        for name, s in concrete.structured_outputs.items()
    }
    return {"inputs": inputs, "outputs": outputs}


def write_gated(
    staging,
    manifest,
    rejected,
    quantize,
    flatbuffer,
    report,
    max_quality_loss,
    allow_quality_loss,
    name=None,
    **details,
) -> None:
    """Write a converted file into `staging` (as `name`, default `tflite_filename`) and
    describe it in `manifest["files"]`, unless it is quantised and loses more than
    `max_quality_loss` (its `parity` report's score): then its score goes into `rejected`,
    and the file is written only with `allow_quality_loss` (else it is described in
    `manifest["rejected"]`)."""
    name = name or tflite_filename(quantize)
    entry = {
        "quantize": quantize,
        "bytes": len(flatbuffer),
        "ops": conversion.ops_used(flatbuffer),
        **details,
        "parity": report,
        "quality_metric": report.get("score", {}).get("metric"),
        "quality_loss": quality_loss(report),
    }
    loss = entry["quality_loss"]
    if quantize != "none" and loss is not None and loss > max_quality_loss:
        rejected[name] = report["score"]
        if not allow_quality_loss:
            manifest["rejected"][name] = entry
            return
    with open(os.path.join(staging, name), "wb") as f:
        f.write(flatbuffer)
    manifest["files"][name] = entry
