"""Export a run directory for serving and mobile: `lstm-zoo export` and `lstm-zoo bench-tflite`.

    export_run("runs/text-lstm-...", quantize=["none", "dynamic", "float16", "int8"])

The model is the run's best checkpoint; the representative data (int8 calibration, parity,
the score of every file: bits per token, nats per step for music and frames, KL divergence
from Keras for speech) are windows of the run's own validation split, drawn by the task's
pipeline; the vocabulary goes into the manifest and into every .tflite file for on-device
decoding. A translation run is scored on test sentences (`export_translation_run`).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from pipelines.rundir import RunLock, prepare_existing
from pipelines.train import get_task, load_checkpoint, load_config
from zoo.export import FORMATS, bench_tflite, check_out_dir, export_model, export_seq2seq

EXPORT_DIR = "export"

__all__ = ["EXPORT_DIR", "bench_tflite", "export_run", "export_translation_run",
           "representative_windows"]


def representative_windows(dataset, count, seq_len):
    """`count` input windows (1, seq_len) from a dataset of (inputs, targets) batches; inputs
    given as {"features", "lengths"} (utterances) are padded with zeros to seq_len frames."""
    windows = []
    for inputs, _ in dataset:
        if isinstance(inputs, dict):
            inputs = np.asarray(inputs["features"])[:, :seq_len]
            inputs = np.pad(inputs, [(0, 0), (0, seq_len - inputs.shape[1]), (0, 0)])
        inputs = np.asarray(inputs)
        if inputs.shape[1] < seq_len:
            raise ValueError(
                f"The pipeline's windows hold {inputs.shape[1]} steps, fewer than "
                f"seq_len={seq_len}; export with a smaller --seq_len"
            )
        windows.extend(row[None, :seq_len] for row in inputs)
        if len(windows) >= count:
            return windows[:count]
    if not windows:
        raise ValueError("The run's validation split holds no window to calibrate on")
    return windows


def export_run(run_dir, out_dir=None, format=FORMATS, quantize="none", seq_len=None,
               calibration_windows=16, max_quality_loss=None, allow_quality_loss=False):
    """Export the best checkpoint of `run_dir` with `zoo.export.export_model`; the manifest.

    Args:
        run_dir: a directory written by `lstm-zoo train`.
        out_dir: where to write (default `<run_dir>/export`, replaced atomically).
        format, quantize: see `zoo.export.export_model`.
        seq_len: length of the `predict` signature (default the run's training seq_len); for a
            translation run, the source length of `encode` (default the run's max_len).
        calibration_windows: validation windows used for int8 calibration and parity
            (for a translation run: test sentences for parity and as many validation pairs
            for calibration, see `export_translation_run`).
        max_quality_loss, allow_quality_loss: the quality gate of quantised files (bits per
            token, nats per step or KL bits per step, on those validation windows;
            `zoo.export.export_model`; default 0.05), or the task's own (a task with an
            `export` method, e.g. the classifier's accuracy points).
    """
    with RunLock(run_dir, shared=True):
        return _export_run(run_dir, out_dir, format, quantize, seq_len, calibration_windows,
                           max_quality_loss, allow_quality_loss)


def _export_run(run_dir, out_dir, format, quantize, seq_len, calibration_windows,
                max_quality_loss, allow_quality_loss):
    config = load_config(run_dir)
    task = get_task(config.task)
    if hasattr(task, "export"):  # a task whose model has its own export (the classifier)
        return task.export(config, run_dir, out_dir or os.path.join(run_dir, EXPORT_DIR),
                           quantize=quantize, seq_len=seq_len, max_quality_loss=max_quality_loss,
                           allow_quality_loss=allow_quality_loss)
    max_quality_loss = 0.05 if max_quality_loss is None else max_quality_loss
    translating = config.task == "translation"
    out_dir = out_dir or os.path.join(run_dir, EXPORT_DIR)
    if translating:  # the translation extra, only for a translation run
        from pipelines import translation
    check_out_dir(out_dir, "seq2seq" if translating else "model",  # before any work
                  [translation.TOKENIZER] if translating else ())
    data = prepare_existing(task, config, run_dir)
    if translating:
        return export_translation_run(run_dir, config, data, out_dir, format, quantize, seq_len,
                                      calibration_windows, max_quality_loss, allow_quality_loss)
    seq_len = seq_len or task.sequence_length(config)
    windows = representative_windows(data.validation or data.test, calibration_windows, seq_len)
    metadata = {"task": config.task, "config": dataclasses.asdict(config)}
    vocab = data.info.get("vocab")
    if vocab is not None:
        metadata.update(vocabulary=list(vocab.tokens), level=vocab.level)
    return export_model(
        load_checkpoint(run_dir),
        out_dir or os.path.join(run_dir, EXPORT_DIR),
        format=format,
        quantize=quantize,
        representative_data=windows,
        seq_len=seq_len,
        metadata=metadata,
        max_quality_loss=max_quality_loss,
        allow_quality_loss=allow_quality_loss,
    )


def export_translation_run(run_dir, config, data, out_dir=None, format=FORMATS, quantize="none",
                           max_source_len=None, sentences=16, max_quality_loss=0.05,
                           allow_quality_loss=False):
    """Export a translation run with `zoo.export.export_seq2seq`; the manifest.

    Every file is scored on the first `sentences` test pairs that fit: greedy agreement with
    Keras, BLEU of its greedy translations, and bits per target token teacher-forced along
    the references (the quality gate of quantised files). int8 calibrates on as many
    validation pairs. Pairs are tokenized by the run's SentencePiece model, which is copied
    beside the model (`subwords.model`, named in the manifest with the pad/unk/bos/eos ids).
    Sources hold at most `max_source_len` tokens (default the run's --max_len); translations
    at most 2 * max_source_len + 10.
    """
    from pipelines import translation

    max_source_len = max_source_len or config.max_len
    subwords = data.info["subwords"]

    def fitting(pairs):
        """Sources, targets (+ eos) and reference texts of the first `sentences` pairs that
        fit in max_source_len tokens."""
        pairs = pairs[: max(1, sentences)]
        kept = [(source, target + [translation.EOS], text) for source, target, (_, text) in
                zip(*translation.encode_pairs(subwords, pairs), pairs)
                if max(len(source), len(target) + 1) <= max_source_len]
        return [list(column) for column in zip(*kept)] or [[], [], []]

    sources, targets, references = fitting(data.info["test_pairs"])
    if not sources:
        raise ValueError(f"No test sentence of {run_dir} fits in max_source_len={max_source_len}")
    calibration = None
    if "int8" in ([quantize] if isinstance(quantize, str) else quantize):
        calibration = list(zip(*fitting(data.info["validation_pairs"])[:2])) or None

    def bleu(translations):
        hypotheses = [subwords.decode(np.array([ids]))[0] for ids in translations]
        return translation.score(hypotheses, references)["bleu"]

    metadata = {"task": config.task, "config": dataclasses.asdict(config),
                "tokenizer": translation.TOKENIZER,
                "token_ids": {"pad": translation.PAD, "unk": translation.UNK,
                              "bos": translation.BOS, "eos": translation.EOS},
                "source_suffix": [translation.EOS]}
    return export_seq2seq(
        load_checkpoint(run_dir),
        out_dir or os.path.join(run_dir, EXPORT_DIR),
        sources,
        start_id=translation.BOS,
        end_id=translation.EOS,
        format=format,
        quantize=quantize,
        max_source_len=max_source_len,
        max_length=2 * max_source_len + 10,
        metadata=metadata,
        files={translation.TOKENIZER: subwords.proto},
        targets=targets,
        calibration=calibration,
        bleu=bleu,
        max_quality_loss=max_quality_loss,
        allow_quality_loss=allow_quality_loss,
    )
