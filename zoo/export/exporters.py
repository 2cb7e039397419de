"""Export a model for serving and for mobile: SavedModel and TFLite files, each checked in
LiteRT against Keras, and a manifest, written atomically into one folder.

    manifest = export(model, "exports/lm", quantize=["none", "int8"], representative_data=x)

`export` asks the model what it is (`zoo.models.protocol`): a `StepModel` (or a plain Keras
chain) gets `step` and `predict` signatures (`export_model`), an `EncoderDecoder` its `encode`
and `decode_step` (`export_seq2seq`), a `Classifier` its `classify` and streaming `step`
(`zoo.export.classification.export_classifier`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from zoo.export import conversion, saved_model
from zoo.export.classification import export_classifier
from zoo.export.encoder_decoder import Seq2SeqModule
from zoo.export.manifest import (
    EXPORT_FORMAT,
    FORMATS,
    MANIFEST,
    as_list,
    atomic_directory,
    check_out_dir,
    parity_inputs,
    signature_shapes,
    tflite_filename,
    write_gated,
)
from zoo.export.metadata import JSON_ENTRY, with_metadata
from zoo.export.parity import (
    check_parity,
    check_translator_parity,
    gate_metric,
    parity,
    quality_error,
    translator_parity,
    unit_of,
)
from zoo.export.signatures import InferenceModule
from zoo.models.protocol import Classifier, EncoderDecoder

# What of the manifest each .tflite file carries as metadata (`zoo.export.metadata`).
DEVICE_KEYS = ("format", "kind", "model", "cells", "signatures", "metadata")


def export(model, out_dir, **options) -> dict:
    """Export `model` as what it declares itself (module docstring); `options` are those of
    `export_seq2seq` for an `EncoderDecoder`, of `export_classifier` for a `Classifier`, of
    `export_model` otherwise."""
    if isinstance(model, EncoderDecoder):
        return export_seq2seq(model, out_dir, **options)
    if isinstance(model, Classifier):
        return export_classifier(model, out_dir, **options)
    return export_model(model, out_dir, **options)


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
                                     TFLite op computes them (see `zoo.export.fusion`)
        model_<quantize>.tflite      one per extra quantisation (dynamic fuses plain LSTM
                                     layers only, float16 as float32, int8 none: int8
                                     matmuls, float32 gate math, see `tflite.convert`)
                                     (every .tflite file also holds the manifest's cells,
                                     signatures and metadata, see `zoo.export.metadata`)
        manifest.json                cells, signatures with shapes, ops, sizes, parity, metadata

    Every .tflite file is run in LiteRT on `representative_data` and compared with
    `model(x)`; the float32 file must match within `tolerance` or the export fails. A quantised
    file is scored on the same data in the metric the model declares (`StepModel.quality`:
    bits per token for a language model, weighted quantile loss for a forecaster, ...), else
    the KL divergence from Keras's outputs in bits per step (see `parity`); the manifest's
    `quality_gate` names that metric and its unit. One that loses more than `max_quality_loss`
    is not written (unless `allow_quality_loss`); the others are, and `QualityError` then
    names it, by how much, and what to try.

    Args:
        model: a `StepModel`, or a Keras chain of step-wise and recurrent layers (see
            `InferenceModule`).
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
        max_quality_loss: what a quantised file may lose against Keras, in the unit of the
            metric the model declares.
        allow_quality_loss: write such files anyway (the manifest records their loss).
    """
    if isinstance(model, EncoderDecoder):
        raise ValueError(
            f"Model {model.name!r} is an encoder-decoder: export it with "
            "`zoo.export.export_seq2seq`"
        )
    formats = as_list(format, "format", FORMATS)
    quantizations = as_list(quantize, "quantize", conversion.QUANTIZATIONS)
    check_out_dir(out_dir, "model")  # before any conversion work
    modules = {}

    def module_for(fuse, share_weights=True):
        key = fuse, share_weights
        if key not in modules:
            modules[key] = InferenceModule(model, batch_size, seq_len, fuse, share_weights)
        return modules[key]

    module = module_for(fuse)
    sequences = parity_inputs(module, representative_data)
    calibration = None if representative_data is None else sequences  # a list, reusable
    metric = gate_metric(model, sequences)
    manifest = {
        "format": EXPORT_FORMAT,
        "kind": "model",
        "model": model.name,
        "cells": [
            {"cell": name, "units": units, "fused": fused, "state_shapes": list(map(list, shapes))}
            for name, units, fused, shapes in module.layout
        ],
        "signatures": {
            name: signature_shapes(getattr(module, name)) for name in module.signatures()
        },
        "files": {},
        "rejected": {},
        "quality_gate": {
            "max_loss": max_quality_loss,
            "allowed": bool(allow_quality_loss),
            "metric": metric,
            "unit": unit_of(metric),
        },
        "metadata": metadata or {},
    }
    rejected = {}
    phases = ("saved_model" in formats) + len(quantizations) * ("tflite" in formats)
    with (
        atomic_directory(out_dir, "model") as staging,
        tqdm(total=phases, desc="export", unit="file", disable=None, leave=False) as progress,
    ):
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
                flatbuffer = with_metadata(
                    conversion.convert(source, q, calibration),
                    {JSON_ENTRY: {k: manifest[k] for k in DEVICE_KEYS}},
                )
                report = parity(model, flatbuffer, sequences)
                if q == "none":
                    check_parity(report, tolerance, name)
                progress.update()
                write_gated(
                    staging,
                    manifest,
                    rejected,
                    q,
                    flatbuffer,
                    report,
                    max_quality_loss,
                    allow_quality_loss,
                    fused_lstm_layers=len(source.fused_specs),
                )
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
    if rejected and not allow_quality_loss:
        raise quality_error(rejected, max_quality_loss, out_dir)
    return manifest


def export_seq2seq(
    model,
    out_dir,
    sources,
    start_id,
    end_id,
    format=("saved_model", "tflite"),
    quantize="none",
    max_source_len=64,
    max_length=100,
    tolerance=1e-4,
    metadata=None,
    files=None,
    targets=None,
    calibration=None,
    bleu=None,
    max_quality_loss=0.05,
    allow_quality_loss=False,
):
    """Export an encoder-decoder for serving and for mobile; returns the manifest.

    Writes into `out_dir` (new, empty or an earlier export: see `check_out_dir`) `saved_model/`
    (`encode`, `decode_step`, `translate`), `model.tflite` (float32) and
    `model_<quantize>.tflite` (see `zoo.export.encoder_decoder` for the signatures), `files`
    (name -> bytes, e.g. the SentencePiece model) and `manifest.json`. Each .tflite file also
    holds the files and the manifest's device settings as metadata (`zoo.export.metadata`),
    so it is enough on its own. Every .tflite file is checked in LiteRT on `sources` (see
    `zoo.export.parity.translator_parity`); the float32 file must match Keras within `tolerance` and
    give the same greedy translations, or the export fails. With `targets`, a quantised file
    whose teacher-forced bits per target token exceed Keras's by more than
    `max_quality_loss` is not written (unless `allow_quality_loss`), and `QualityError` then
    names it, by how much, and what to try.

    Args:
        model: an `EncoderDecoder` (e.g. `Seq2Seq`).
        out_dir: the export directory.
        sources: real source sentences, lists of ids (at most `max_source_len` each).
        start_id, end_id: the decoder's start token and the end token.
        format: "saved_model", "tflite", or both (a list).
        quantize: one or several of "none", "dynamic", "float16", "int8" (int8 matmuls and
            embeddings, calibrated on `calibration`; the rest in float32, see `tflite.convert`).
        max_source_len, max_length: the static source length, the longest translation.
        tolerance: the largest float32 max-abs difference from Keras accepted.
        metadata: JSON-serialisable extras for the device (tokenizer, ids, task).
        files: extra files to write beside the model, name -> bytes.
        targets: each source's reference translation (ids ending with `end_id`): the score
            of every file, and the quality gate of quantised ones.
        calibration: (source ids, target ids) pairs for int8 calibration, best not the
            `sources` the files are scored on.
        bleu: a function of greedy translations (lists of ids) to a corpus BLEU, recorded in
            each file's parity report.
        max_quality_loss: what a quantised file may lose, in bits per target token.
        allow_quality_loss: write such files anyway (the manifest records their loss).
    """
    formats = as_list(format, "format", FORMATS)
    quantizations = as_list(quantize, "quantize", conversion.QUANTIZATIONS)
    extra_files = sorted(files or {})
    check_out_dir(out_dir, "seq2seq", extra_files)  # before any conversion work
    sources = [list(map(int, source)) for source in sources]
    targets = None if targets is None else [list(map(int, target)) for target in targets]
    module = Seq2SeqModule(model, max_source_len, 1, int(start_id), int(end_id), max_length)
    for source in sources + [source for source, _ in calibration or ()]:
        module.pad(source)  # a clear error for a sentence longer than max_source_len
    manifest = {
        "format": EXPORT_FORMAT,
        "kind": "seq2seq",
        "model": model.name,
        "config": {k: v for k, v in model.get_config().items() if k != "dtype"},
        "start_id": int(start_id),
        "end_id": int(end_id),
        "max_source_len": max_source_len,
        "max_length": max_length,
        "signatures": {
            name: signature_shapes(getattr(module, name)) for name in ("encode", "decode_step")
        },
        "files": {},
        "rejected": {},
        "quality_gate": {
            "max_loss": max_quality_loss,
            "allowed": bool(allow_quality_loss),
            "unit": "bits per target token, teacher-forced",
        },
        "extra_files": extra_files,
        "metadata": metadata or {},
    }
    rejected = {}
    with atomic_directory(out_dir, "seq2seq", extra_files) as staging:
        if "saved_model" in formats:
            path = os.path.join(staging, "saved_model")
            tf.saved_model.save(
                module,
                path,
                signatures={
                    **module.signatures(),
                    "translate": module.translate.get_concrete_function(),
                },
            )
            manifest["files"]["saved_model"] = _reload_check(
                module, path, sources, model, start_id, end_id, max_length
            )
        if "tflite" in formats:
            device = {
                JSON_ENTRY: {k: v for k, v in manifest.items() if k not in ("files", "rejected")},
                **(files or {}),
            }
            for q in quantizations:
                flatbuffer = with_metadata(conversion.convert(module, q, calibration), device)
                name = tflite_filename(q)
                report = translator_parity(
                    model, flatbuffer, sources, start_id, end_id, max_length, targets, bleu
                )
                if q == "none":
                    check_translator_parity(report, tolerance, name)
                write_gated(
                    staging,
                    manifest,
                    rejected,
                    q,
                    flatbuffer,
                    report,
                    max_quality_loss,
                    allow_quality_loss,
                )
        for name, data in (files or {}).items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(data)
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
    if rejected and not allow_quality_loss:
        raise quality_error(rejected, max_quality_loss, out_dir)
    return manifest


def _reload_check(module, path, sources, model, start_id, end_id, max_length):
    """Reload the SavedModel as a user would: its `encode` against the module's, and its
    `translate` against `Seq2Seq.generate`, on the first sentence."""
    reloaded = tf.saved_model.load(path).signatures
    source = tf.constant(module.pad(sources[0]))
    memory = reloaded["encode"](source=source)["memory"]
    ids = reloaded["translate"](source=source)["ids"].numpy()
    expected, _ = model.generate(source, start_id, end_id, max_length=max_length)
    return {
        "reload_max_abs_diff": float(np.abs(memory - module.encode(source)["memory"]).max()),
        "translate_equal": bool(np.array_equal(ids, expected)),
    }
