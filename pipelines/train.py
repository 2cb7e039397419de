"""One training loop for every task: strategy scope, checkpoints, metrics, resume, NaN guard.

A task plugs in by subclassing `Task` and registering it with `@register_task`; the loop, the
run directory and the command line then work for it unchanged:

    @register_task
    class TextTask(Task):
        name, config_class = "text", TextConfig
        def prepare(self, config, run_dir, split=True): ...   # -> TaskData
        def build_model(self, config, data): ...               # -> keras.Model (uncompiled)
        def loss(self, config): ...

A run directory holds `config.json`, the task's artefacts (e.g. `vocab.json`), `last.keras`
and `best.keras` (lowest validation loss), `metrics.json` (history, best epoch, test metrics)
and TensorBoard logs in `logs/`. Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from pipelines.configs import TrainConfig, atomic_write

CONFIG, LAST, BEST, METRICS = "config.json", "last.keras", "best.keras", "metrics.json"


@dataclass
class TaskData:
    """What a task's `prepare` returns.

    Attributes:
        train: `start_step -> tf.data.Dataset`, an endless stream of (inputs, targets) batches
            whose order depends only on the seed and the step, so a resumed run sees the same
            batches as an uninterrupted one. None when only evaluating.
        validation, test: finite datasets of (inputs, targets) batches (validation may be None).
        steps_per_pass: batches in one pass over the training split.
        info: whatever `build_model` and `sample` need (e.g. the vocabulary).
    """

    train: Callable[[int], tf.data.Dataset] | None
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    steps_per_pass: int = 1
    info: dict = dataclasses.field(default_factory=dict)


class Task:
    """A trainable task: data, model, loss and derived metrics. Subclass and `register_task`."""

    name: str = ""
    config_class: type = TrainConfig

    def prepare(self, config, run_dir, split=True) -> TaskData:
        """Datasets for `config`; saves (or reloads) artefacts such as a vocabulary in run_dir.

        With `split=False` the whole corpus is the `test` set (to evaluate on new data).
        """
        raise NotImplementedError

    def build_model(self, config, data: TaskData) -> keras.Model:
        raise NotImplementedError

    def loss(self, config):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, config):
        return []

    def summarize(self, config, logs: dict) -> dict:
        """Metrics derived from Keras logs (e.g. bits per character from the loss)."""
        return {}

    def score(self, config, model, data: TaskData) -> dict:
        """Test metrics computed from the model's outputs, not its loss (e.g. BLEU)."""
        return {}

    def sample(self, config, run_dir, model, **options) -> str:
        raise NotImplementedError(f"Task {self.name!r} does not sample.")


TASKS: dict[str, Task] = {}


def register_task(cls):
    """Class decorator: make the task available by `cls.name` to `train` and `lstm-zoo`."""
    if cls.name in TASKS:
        raise ValueError(f"A task named {cls.name!r} is already registered.")
    TASKS[cls.name] = cls()
    return cls


def get_task(name) -> Task:
    """The task registered as `name`, importing `pipelines.<name>` if needed."""
    if name not in TASKS and isinstance(name, str) and name.isidentifier():
        try:
            importlib.import_module(f"pipelines.{name}")
        except ModuleNotFoundError:
            pass
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))}") from None


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


def default_run_dir(config) -> str:
    cell = getattr(config, "cell", "model")
    return os.path.join("runs", f"{config.task}-{cell}-{time.strftime('%Y%m%d-%H%M%S')}")


def load_config(run_dir):
    """The config saved in `run_dir` (its class comes from the task it names)."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; is --run_dir={run_dir} a run directory?")
    with open(path, encoding="utf-8") as f:
        task = json.load(f).get("task")
    return get_task(task).config_class.load(path)


def load_checkpoint(run_dir, which=BEST):
    """The model saved in `run_dir` (`best.keras`, falling back to `last.keras`)."""
    for name in (which, LAST):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            return keras.models.load_model(path)
    raise FileNotFoundError(f"{run_dir}: no checkpoint ({which} or {LAST}) in the run directory")


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.epoch, self.failure = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = f"epoch {self.epoch + 1}, batch {batch + 1} (loss={float(loss)})"
            self.model.stop_training = True


class RunCheckpoint(keras.callbacks.Callback):
    """After each finite epoch, atomically write last.keras, best.keras and metrics.json."""

    def __init__(self, directory, summarize, history=None):
        super().__init__()
        self.directory, self.summarize = directory, summarize
        self.history = list(history or [])

    @property
    def best(self):
        scored = [h for h in self.history if "val_loss" in h] or self.history
        return min(scored, key=lambda h: h.get("val_loss", h["loss"])) if scored else None

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for v in logs.values()):
            return  # the NaN guard stops the run; the previous checkpoints stay.
        previous_best = self.best
        self.history.append({"epoch": epoch + 1, **logs, **self.summarize(logs)})
        tmp = os.path.join(self.directory, f".tmp-{LAST}")
        self.model.save(tmp)
        if self.best is not previous_best:
            shutil.copyfile(tmp, os.path.join(self.directory, f".tmp-{BEST}"))
            os.replace(os.path.join(self.directory, f".tmp-{BEST}"),
                       os.path.join(self.directory, BEST))
        os.replace(tmp, os.path.join(self.directory, LAST))
        write_metrics(self.directory, history=self.history, best=self.best)


def write_metrics(directory, **values):
    """Merge `values` into metrics.json, atomically."""
    path = os.path.join(directory, METRICS)
    metrics = read_metrics(directory)
    metrics.update(values)
    atomic_write(path, json.dumps(metrics, indent=2))


def read_metrics(directory) -> dict:
    path = os.path.join(directory, METRICS)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


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


def _fit_multi_worker(model, strategy, loss_fn, dataset, validation, *, epochs, initial_epoch,
                      steps_per_epoch, validation_steps, callbacks):
    """`model.fit` for MultiWorkerMirroredStrategy, which Keras 3.15's fit cannot run.

    (keras-team/keras#20585: fit reduces the step results along an axis that scalars lack.)
    The same model, optimizer, loss and callbacks; gradients are all-reduced across workers
    by the optimizer; validation drops the last partial batch.
    """
    replicas = strategy.num_replicas_in_sync

    def loss_of(inputs, targets, training):
        return loss_fn(targets, model(inputs, training=training)) / replicas

    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_of(inputs, targets, True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(gradients, model.trainable_variables)
        return loss

    def distributed(step):
        return tf.function(lambda batch: strategy.reduce(
            "SUM", strategy.run(step, args=batch), axis=None))

    train_step = distributed(train_step)
    test_step = distributed(lambda inputs, targets: loss_of(inputs, targets, False))
    with strategy.scope():
        model(next(iter(dataset))[0])
        model.optimizer.build(model.trainable_variables)
    batches = iter(strategy.experimental_distribute_dataset(dataset))
    if validation is not None:
        batch_size = next(iter(validation))[0].shape[0]
        validation = validation.unbatch().batch(batch_size, drop_remainder=True)
        validation = strategy.experimental_distribute_dataset(validation.take(
            validation_steps or -1))
    callbacks = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs,
                                             steps=steps_per_epoch)
    callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        total = 0.0
        for step in range(steps_per_epoch):
            callbacks.on_train_batch_begin(step)
            total += float(train_step(next(batches)))
            logs = {"loss": total / (step + 1)}
            callbacks.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        if validation is not None:
            logs["val_loss"] = float(np.mean([float(test_step(b)) for b in validation]))
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()


def train(config: TrainConfig, verbose="auto"):
    """Train `config.task` as `config` says; returns (model, metrics dict).

    Writes the run directory (see the module docstring). With `config.resume`, continues from
    `last.keras` (weights and optimizer state; the learning rate of `config`) at the next
    epoch, on the same batches an uninterrupted run would have seen. Raises FloatingPointError
    if the loss becomes NaN or infinite; the checkpoints of the last good epoch are kept.
    """
    task = get_task(config.task)
    if not isinstance(config, task.config_class):
        raise TypeError(f"Task {task.name!r} expects a {task.config_class.__name__}, "
                        f"got a {type(config).__name__}.")
    strategy = make_strategy(config.strategy)
    run_dir = config.run_dir or default_run_dir(config)
    config = dataclasses.replace(config, run_dir=run_dir)
    last = os.path.join(run_dir, LAST)
    if config.resume and not os.path.isfile(last):
        raise FileNotFoundError(f"{last}: no checkpoint to resume from (--resume)")
    if not config.resume and os.path.exists(last):
        raise FileExistsError(f"{run_dir}: already holds a run; pass --resume to continue it "
                              "or choose another --run_dir")
    chief = is_chief(strategy)
    os.makedirs(run_dir, exist_ok=True)
    work_dir = run_dir if chief else tempfile.mkdtemp(prefix="lstm-zoo-worker-")

    keras.utils.set_random_seed(config.seed)
    data = task.prepare(config, work_dir)
    config.save(os.path.join(work_dir, CONFIG))
    history = read_metrics(run_dir).get("history", []) if config.resume else []
    initial_epoch = history[-1]["epoch"] if history else 0

    with strategy.scope(), _global_policy("mixed_bfloat16" if config.mixed_precision else None):
        if config.resume:
            model = keras.models.load_model(last)
            optimizer = model.optimizer  # its state, with the (possibly new) learning rate
            optimizer.learning_rate = config.learning_rate
        else:
            model = task.build_model(config, data)
            optimizer = keras.optimizers.Adam(config.learning_rate,
                                              clipnorm=config.clipnorm or None)
        model.compile(optimizer=optimizer, loss=task.loss(config),
                      metrics=task.metrics(config), jit_compile=config.jit_compile)

    steps = config.steps or data.steps_per_pass
    guard = NaNGuard()
    checkpoint = RunCheckpoint(work_dir, lambda logs: task.summarize(config, logs), history)
    dataset = _distributable(data.train(initial_epoch * steps))
    validation = None if data.validation is None else _distributable(data.validation)
    callbacks = [guard, checkpoint, keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"))]
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _fit_multi_worker(model, strategy, task.loss(config), dataset, validation,
                          epochs=config.epochs, initial_epoch=initial_epoch,
                          steps_per_epoch=steps, validation_steps=config.validation_steps,
                          callbacks=callbacks)
    else:
        model.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps, validation_data=validation,
                  validation_steps=config.validation_steps or None, callbacks=callbacks,
                  shuffle=False,  # the stream is shuffled by seed and pass
                  verbose=verbose)
    if guard.failure:
        kept = f"the last good checkpoint is {last}" if checkpoint.history else "no checkpoint"
        raise FloatingPointError(f"Training diverged at {guard.failure}; stopped ({kept}). "
                                 "Try a lower --learning_rate or --clipnorm.")
    best = load_checkpoint(work_dir) if checkpoint.history else model
    test = {**evaluate_model(task, config, best, data.test), **task.score(config, best, data)}
    write_metrics(work_dir, test=test)
    if not chief:
        shutil.rmtree(work_dir, ignore_errors=True)
    return model, {"history": checkpoint.history, "best": checkpoint.best, "test": test}


def evaluate_model(task, config, model, dataset, steps=None):
    """Loss and task metrics of `model` on `dataset`, as a dict of floats."""
    if model.optimizer is None or not model.compiled:
        model.compile(loss=task.loss(config), metrics=task.metrics(config))
    logs = model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    logs = {k: float(v) for k, v in logs.items()}
    return {**logs, **task.summarize(config, logs)}


def evaluate(run_dir, data=None):
    """Metrics of the best checkpoint of `run_dir` on its test split, or on all of `data`."""
    config = load_config(run_dir)
    task = get_task(config.task)
    if data is not None:
        config = dataclasses.replace(config, data=data)
    prepared = task.prepare(config, run_dir, split=data is None)
    model = load_checkpoint(run_dir)
    return {**evaluate_model(task, config, model, prepared.test),
            **task.score(config, model, prepared)}


def sample(run_dir, **options) -> str:
    """Generated output of the best checkpoint of `run_dir` (options depend on the task)."""
    config = load_config(run_dir)
    return get_task(config.task).sample(config, run_dir, load_checkpoint(run_dir), **options)


def bits(loss_in_nats) -> float:
    """Bits per token from a mean cross-entropy in nats."""
    return float(loss_in_nats) / math.log(2.0)
