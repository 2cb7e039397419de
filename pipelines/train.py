"""One training loop for every task: strategy scope, checkpoints, metrics, resume, NaN guard.

Tasks plug in through `pipelines.tasks` (`Task`, `@register_task`; re-exported here); the
loop, the run directory and the command line then work for them unchanged.

The run directory and its rules (one owner, inputs checked against the config, exact resume)
are described in `pipelines.rundir`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from pipelines import rundir
from pipelines.callbacks import NaNGuard, RunCheckpoint
from pipelines.configs import TrainConfig
from pipelines.optimizers import make_optimizer
from pipelines.rundir import (
    BEST,
    CONFIG,
    LAST,
    METRICS,
    default_run_dir,
    load_checkpoint,
    load_config,
    read_metrics,
    write_metrics,
)
from pipelines.tasks import (  # noqa: F401 (the task contract, re-exported)
    EXTRAS,
    TASKS,
    Task,
    TaskData,
    bits,
    get_task,
    register_task,
    task_modules,
)
from pipelines.threads import set_threads

__all__ = [
    "BEST",
    "CONFIG",
    "LAST",
    "METRICS",
    "Task",
    "TaskData",
    "TrainingInterrupted",
    "evaluate",
    "get_task",
    "load_checkpoint",
    "load_config",
    "read_metrics",
    "register_task",
    "sample",
    "set_threads",
    "train",
    "write_metrics",
]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training; the message says what was saved and how to resume."""


def make_strategy(name):
    """The tf.distribute strategy called `name`: default, mirrored or multi_worker.

    `mirrored` uses every GPU, or every logical CPU device when there is no GPU;
    `multi_worker` reads the cluster from the TF_CONFIG environment variable.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"Unknown strategy. Received: strategy={name!r}; expected default, mirrored or "
        "multi_worker."
    )


def is_chief(strategy) -> bool:
    """Whether this process writes the run directory (all but non-chief workers)."""
    return strategy.extended.should_checkpoint


@contextlib.contextmanager
def _global_policy(name):
    """Build models under the dtype policy `name` (None: unchanged), then restore it."""
    previous = keras.mixed_precision.global_policy()
    if name:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _distributable(dataset):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def train(config: TrainConfig, verbose="auto", command=None):
    """Train `config.task` as `config` says; returns (model, metrics dict).

    Writes the run directory (see `pipelines.rundir`). With `config.resume`, continues the run
    saved in `config.run_dir` from the step count of its `last.keras` (weights and optimizer
    state; the learning rate of `config`), on the batches an uninterrupted run would have seen;
    `config` may differ from the saved one only in `configs.RESUMABLE` settings. Raises
    FloatingPointError if the loss becomes NaN or infinite (the last good checkpoints stay) and
    `TrainingInterrupted` on Ctrl-C (after saving last.keras). `command` is recorded in
    config.json (default: the process's command line).
    """
    task = get_task(config.task)
    if not isinstance(config, task.config_class):
        raise TypeError(
            f"Task {task.name!r} expects a {task.config_class.__name__}, "
            f"got a {type(config).__name__}."
        )
    set_threads(config.intra_op_threads, config.inter_op_threads)
    strategy = make_strategy(config.strategy)
    config = dataclasses.replace(config, run_dir=str(config.run_dir or default_run_dir(config)))
    start, cpu = time.monotonic(), time.process_time()
    if is_chief(strategy):
        with rundir.RunLock(config.run_dir):
            try:
                model, metrics = _train(task, config, strategy, config.run_dir, verbose, command)
            finally:  # the run's time over all its invocations, for model cards and studies
                rundir.add_time(config.run_dir, time.monotonic() - start, time.process_time() - cpu)
    else:  # a non-chief worker writes its copy of everything to a scratch folder
        scratch = tempfile.mkdtemp(prefix="lstm-zoo-worker-")
        try:
            model, metrics = _train(task, config, strategy, scratch, verbose, command)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    metrics.update(
        run_dir=config.run_dir,
        seconds=time.monotonic() - start,
        parameters=int(model.count_params()),
    )
    return model, metrics


def _check_resumable(config, run_dir):
    """The saved run's data fingerprint, after refusing settings that would change the run."""
    if not os.path.isfile(os.path.join(run_dir, CONFIG)):
        raise FileNotFoundError(
            f"{run_dir}: no run to resume (no {CONFIG}); drop --resume to start one"
        )
    saved = load_config(run_dir)
    rundir.check_unedited(run_dir, saved)
    conflicts = config.conflicts(saved)
    if conflicts:
        shown = ", ".join(
            f"--{name}={new} (the run has {old})"
            for name, (old, new) in list(conflicts.items())[:4]
        )
        raise ValueError(
            f"{run_dir}: --resume continues the run as saved; {shown} would change "
            "it. Only --epochs, --steps, --learning_rate and other run-length "
            "settings may change; start a new --run_dir for the rest"
        )
    if saved.schedule != "constant" and config.learning_rate != saved.learning_rate:
        raise ValueError(
            f"{run_dir}: --learning_rate={config.learning_rate} (the run has "
            f"{saved.learning_rate}): with --schedule={saved.schedule} the rate "
            "follows the schedule saved with the run"
        )
    fingerprint = rundir.saved_fingerprint(run_dir)
    current = rundir.data_fingerprint(getattr(config, "data", None))
    if current != fingerprint:
        raise ValueError(
            f"{config.data}: changed since {run_dir} started (data fingerprint "
            f"{current}, the run's {fingerprint}); a resumed run trains on the "
            "same data"
        )
    return fingerprint


def _train(task, config, strategy, work_dir, verbose, command):
    run_dir, chief = config.run_dir, work_dir == config.run_dir
    keras.utils.set_random_seed(config.seed)
    checkpointed = config.resume and any(
        os.path.isfile(os.path.join(run_dir, name)) for name in (LAST, BEST)
    )
    with contextlib.ExitStack() as stack:
        if config.resume:
            fingerprint = _check_resumable(config, run_dir)
            inputs, commit = work_dir, lambda: None
        else:
            if chief:
                rundir.check_new(run_dir)
            inputs, commit = stack.enter_context(rundir.staging(work_dir))
        data = task.prepare(config, inputs)
        if data.examples is not None and config.batch_size > data.examples:
            raise ValueError(
                f"--batch_size={config.batch_size}: the training split holds "
                f"{data.examples} examples, fewer than one batch; use a smaller "
                "--batch_size (or --seq_len) or more data"
            )
        if not config.resume:  # after the task's readers, whose errors say more
            fingerprint = rundir.data_fingerprint(getattr(config, "data", None))
        with strategy.scope(), _global_policy("mixed_bfloat16" if config.mixed_precision else None):
            total = config.epochs * (config.steps or data.steps_per_pass)
            if checkpointed:
                model = load_checkpoint(run_dir, LAST)
                rundir.check_checkpoint(
                    model, task.build_model(config, data), os.path.join(run_dir, LAST)
                )
                optimizer = model.optimizer  # its state, with the (possibly new) learning rate
                if config.schedule == "constant":
                    optimizer.learning_rate = config.learning_rate
            else:
                model = task.build_model(config, data)
                optimizer = make_optimizer(config, total)
            model.compile(
                optimizer=optimizer,
                loss=task.loss(config),
                metrics=task.metrics(config),
                jit_compile=config.jit_compile,
            )
        commit()  # the run starts: its inputs move in and config.json is written
        if chief:
            rundir.save_config(config, run_dir, fingerprint, command)

    steps = config.steps or data.steps_per_pass
    position = int(model.optimizer.iterations) if checkpointed else 0
    done, offset = divmod(position, steps)
    saved_metrics = read_metrics(run_dir)
    history = [h for h in saved_metrics.get("history", []) if h["epoch"] <= done]
    partial = saved_metrics.get("interrupted") if offset else None
    guard = NaNGuard()
    checkpoint = RunCheckpoint(
        work_dir,
        lambda logs: task.summarize(config, logs),
        history,
        config.patience,
        partial=partial,
        steps=steps,
    )
    validation = None if data.validation is None else _distributable(data.validation)
    callbacks = [guard, checkpoint, keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"))]
    # An interrupted epoch is finished first, then whole epochs: batch n is always batch n.
    segments = [(done, done + 1, steps - offset, position)] if offset else []
    first = done + bool(offset)
    segments.append((first, config.epochs, steps, first * steps))
    try:
        for initial_epoch, epochs, epoch_steps, first_step in segments:
            if initial_epoch >= config.epochs or guard.failure or checkpoint.exhausted:
                break
            _fit(
                model,
                strategy,
                task.loss(config),
                _distributable(data.train(first_step)),
                validation,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=epoch_steps,
                validation_steps=config.validation_steps,
                callbacks=callbacks,
                verbose=verbose,
            )
    except KeyboardInterrupt:
        if not chief:
            raise
        rundir.save_checkpoint(model, run_dir)
        at = int(model.optimizer.iterations)
        rundir.write_metrics(run_dir, interrupted=checkpoint.interrupted_epoch(at))
        raise TrainingInterrupted(
            f"Interrupted at step {at} (epoch {at // steps + 1}); saved "
            f"{os.path.join(run_dir, LAST)}; resume with: lstm-zoo train --run_dir={run_dir} "
            "--resume"
        ) from None
    if guard.failure:
        last = os.path.join(run_dir, LAST)
        kept = f"the last good checkpoint is {last}" if checkpoint.history else "no checkpoint"
        raise FloatingPointError(
            f"Training diverged at {guard.failure}; stopped ({kept}). "
            "Try a lower --learning_rate or --clipnorm."
        )
    best = load_checkpoint(work_dir) if checkpoint.history else model
    test = {**evaluate_model(task, config, best, data.test), **task.score(config, best, data)}
    write_metrics(work_dir, test=test)
    return model, {"history": checkpoint.history, "best": checkpoint.best, "test": test}


def _fit(model, strategy, loss, dataset, validation, *, validation_steps, verbose, **schedule):
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from pipelines.distributed import fit_multi_worker

        return fit_multi_worker(
            model,
            strategy,
            loss,
            dataset,
            validation,
            validation_steps=validation_steps,
            **schedule,
        )
    return model.fit(
        dataset,
        validation_data=validation,
        validation_steps=validation_steps or None,
        shuffle=False,  # the stream is shuffled by seed and pass
        verbose=verbose,
        **schedule,
    )


def evaluate_model(task, config, model, dataset, steps=None):
    """Loss and task metrics of `model` on `dataset`, as a dict of floats."""
    if getattr(model, "optimizer", None) is None or not model.compiled:
        model.compile(loss=task.loss(config), metrics=task.metrics(config))
    logs = model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    logs = {k: float(v) for k, v in logs.items()}
    return {**logs, **task.summarize(config, logs)}


def evaluate(run_dir, data=None):
    """Metrics of the best checkpoint of `run_dir` on its test split, or on all of `data`."""
    with rundir.RunLock(run_dir, shared=True):
        config = load_config(run_dir)
        task = get_task(config.task)
        if data is not None:
            config = dataclasses.replace(config, data=data)
        prepared = rundir.prepare_existing(task, config, run_dir, split=data is None)
        model = load_checkpoint(run_dir)
        rundir.check_vocabulary(run_dir, model, prepared.info.get("vocab"))
        return {
            **evaluate_model(task, config, model, prepared.test),
            **task.score(config, model, prepared),
        }


def sample(run_dir, **options) -> str:
    """Generated output of the best checkpoint of `run_dir` (options depend on the task)."""
    with rundir.RunLock(run_dir, shared=True):
        config = load_config(run_dir)
        return get_task(config.task).sample(config, run_dir, load_checkpoint(run_dir), **options)
