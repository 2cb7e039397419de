"""Export of the translator (`zoo.models.seq2seq.Seq2Seq`): SavedModel and .tflite files with
`encode` and `decode_step` signatures (see `zoo.export.seq2seq_module`), each file checked
in LiteRT (`zoo.export.translator`). Greedy or beam search runs on the device, one
`decode_step` per token (`TFLiteTranslator.greedy`).

    manifest = export_seq2seq(model, "exports/translator", sources, start_id=2, end_id=3,
                              targets=references, quantize=["none", "dynamic", "int8"],
                              calibration=validation_pairs)
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from zoo.export import tflite
from zoo.export.export import (
    EXPORT_FORMAT,
    MANIFEST,
    _as_list,
    _signature_shapes,
    atomic_directory,
    check_out_dir,
    tflite_filename,
    write_gated,
)
from zoo.export.metadata import JSON_ENTRY, with_metadata
from zoo.export.parity import quality_error
from zoo.export.seq2seq_module import Seq2SeqModule, decode
from zoo.export.translator import TFLiteTranslator, check_parity, parity


def export_seq2seq(model, out_dir, sources, start_id, end_id, format=("saved_model", "tflite"),
                   quantize="none", max_source_len=64, max_length=100, tolerance=1e-4,
                   metadata=None, files=None, targets=None, calibration=None, bleu=None,
                   max_quality_loss=0.05, allow_quality_loss=False):
    """Export a `Seq2Seq` for serving and for mobile; returns the manifest.

    Writes into `out_dir` (new, empty or an earlier export: see `check_out_dir`) `saved_model/`
    (`encode`, `decode_step`, `translate`), `model.tflite` (float32) and
    `model_<quantize>.tflite` (see `zoo.export.seq2seq_module` for the signatures), `files`
    (name -> bytes, e.g. the SentencePiece model) and `manifest.json`. Each .tflite file also
    holds the files and the manifest's device settings as metadata (`zoo.export.metadata`),
    so it is enough on its own. Every .tflite file is checked in LiteRT on `sources` (see
    `zoo.export.translator.parity`); the float32 file must match Keras within `tolerance` and
    give the same greedy translations, or the export fails. With `targets`, a quantised file
    whose teacher-forced bits per target token exceed Keras's by more than
    `max_quality_loss` is not written (unless `allow_quality_loss`), and `QualityError` then
    names it, by how much, and what to try.

    Args:
        model: a `Seq2Seq`.
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
    formats = _as_list(format, "format", ("saved_model", "tflite"))
    quantizations = _as_list(quantize, "quantize", tflite.QUANTIZATIONS)
    extra_files = sorted(files or {})
    check_out_dir(out_dir, "seq2seq", extra_files)  # before any conversion work
    sources = [list(map(int, source)) for source in sources]
    targets = None if targets is None else [list(map(int, target)) for target in targets]
    module = Seq2SeqModule(model, max_source_len, 1, int(start_id), int(end_id), max_length)
    for source in sources + [source for source, _ in calibration or ()]:
        module.pad(source)  # a clear error for a sentence longer than max_source_len
    manifest = {
        "format": EXPORT_FORMAT, "kind": "seq2seq",
        "model": model.name,
        "config": {k: v for k, v in model.get_config().items() if k != "dtype"},
        "start_id": int(start_id),
        "end_id": int(end_id),
        "max_source_len": max_source_len,
        "max_length": max_length,
        "signatures": {name: _signature_shapes(getattr(module, name))
                       for name in ("encode", "decode_step")},
        "files": {},
        "rejected": {},
        "quality_gate": {"max_loss": max_quality_loss, "allowed": bool(allow_quality_loss),
                         "unit": "bits per target token, teacher-forced"},
        "extra_files": extra_files,
        "metadata": metadata or {},
    }
    rejected = {}
    with atomic_directory(out_dir, "seq2seq", extra_files) as staging:
        if "saved_model" in formats:
            path = os.path.join(staging, "saved_model")
            tf.saved_model.save(module, path, signatures={
                **module.signatures(), "translate": module.translate.get_concrete_function()})
            manifest["files"]["saved_model"] = _reload_check(module, path, sources, model,
                                                             start_id, end_id, max_length)
        if "tflite" in formats:
            device = {JSON_ENTRY: {k: v for k, v in manifest.items()
                                   if k not in ("files", "rejected")}, **(files or {})}
            for q in quantizations:
                flatbuffer = with_metadata(tflite.convert(module, q, calibration), device)
                name = tflite_filename(q)
                report = parity(model, flatbuffer, sources, start_id, end_id, max_length,
                                targets, bleu)
                if q == "none":
                    check_parity(report, tolerance, name)
                write_gated(staging, manifest, rejected, q, flatbuffer, report,
                            max_quality_loss, allow_quality_loss)
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
    return {"reload_max_abs_diff": float(np.abs(memory - module.encode(source)["memory"]).max()),
            "translate_equal": bool(np.array_equal(ids, expected))}


__all__ = ["Seq2SeqModule", "TFLiteTranslator", "decode", "export_seq2seq",
           "parity"]
