"""Export a run directory for serving and mobile: `lstm-zoo export` and `lstm-zoo bench-tflite`.

    export_run("runs/text-lstm-...", quantize=["none", "dynamic", "float16", "int8"])

The model is the run's best checkpoint, exported as what it declares itself
(`zoo.export.export`); what else the export needs comes from the run's task
(`Task.export_options`): the representative data (int8 calibration, parity, and the score of
every file in the task's own unit) drawn from the run's own splits, and what the device needs
beside the model (a vocabulary, a tokenizer).
"""

from __future__ import annotations

import os

from pipelines.rundir import RunLock, load_checkpoint, load_config, prepare_existing
from pipelines.tasks import get_task
from zoo.export import FORMATS, bench_tflite, check_out_dir, export

EXPORT_DIR = "export"

__all__ = ["EXPORT_DIR", "bench_tflite", "export_run"]


def export_run(
    run_dir,
    out_dir=None,
    format=FORMATS,
    quantize="none",
    seq_len=None,
    calibration_windows=16,
    max_quality_loss=None,
    allow_quality_loss=False,
):
    """Export the best checkpoint of `run_dir` with `zoo.export.export`; the manifest.

    Args:
        run_dir: a directory written by `lstm-zoo train`.
        out_dir: where to write (default `<run_dir>/export`, replaced atomically).
        format, quantize: see `zoo.export.export_model`.
        seq_len: length of the `predict` signature (default the run's training window); for
            an encoder-decoder, the source length of `encode` (default the run's max_len).
        calibration_windows: examples of the run's data for int8 calibration and parity
            (`Task.export_options`).
        max_quality_loss, allow_quality_loss: the quality gate of quantised files, in the
            task's unit (default the task's `max_quality_loss`; `zoo.export.export_model`).
    """
    with RunLock(run_dir, shared=True):
        config = load_config(run_dir)
        out_dir = out_dir or os.path.join(run_dir, EXPORT_DIR)
        task = get_task(config.task)
        check_out_dir(out_dir, task.export_kind)  # before any work
        data = prepare_existing(task, config, run_dir)
        options = task.export_options(config, data, calibration_windows, seq_len)
        if max_quality_loss is None:
            max_quality_loss = task.max_quality_loss
        return export(
            load_checkpoint(run_dir),
            out_dir,
            format=format,
            quantize=quantize,
            max_quality_loss=max_quality_loss,
            allow_quality_loss=allow_quality_loss,
            **options,
        )
