"""Experiment configs: dataclasses with defaults and one help line per field.

`TrainConfig` holds what the training loop needs for any task; each task extends it with its
own fields, in the task's module (`pipelines.text.TextConfig`). The command line builds its
flags from these fields, and the final config is saved as JSON in the run directory, so a run
is rebuilt from its directory alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

from zoo.files import atomic_write, read_json

STRATEGIES = ("default", "mirrored", "multi_worker")
SCHEDULES = ("constant", "cosine")
OPTIMIZERS = ("adam", "muon")


def option(default, help, choices=None, between=None):
    """A dataclass field with a default and its help line (shown by `lstm-zoo --help`).

    `choices`: the values the setting may take, as a tuple, or as "module:NAME" of a dict
    whose keys they are or a registry whose names they are (imported only when a config is
    checked, e.g. a model's SIZES). `between`: (lowest, highest) of a numeric setting, None
    for no bound; a subclass that only changes the default keeps the range it overrides.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "between": between})


def setting_range(config_class, name):
    """The `between` of setting `name` of `config_class`, or of the class it overrides it
    from; None when the setting has none."""
    for cls in config_class.__mro__:
        declared = getattr(cls, "__dataclass_fields__", {}).get(name)
        if declared is not None and declared.metadata.get("between") is not None:
            return declared.metadata["between"]
    return None


def check_range(name, value, between):
    """`value` if it is finite and within `between` ((lowest, highest), None for no bound);
    a one-line ValueError naming `--name` otherwise. Non-numbers pass through."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"--{name}={value}: must be a finite number")
    low, high = between or (None, None)
    if low is not None and value < low or high is not None and value > high:
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"--{name}={value}: must be {bounds}")
    return value


def choices_of(spec) -> tuple:
    """The values an `option`'s `choices` allow."""
    if isinstance(spec, str):
        import importlib

        module, name = spec.split(":")
        values = getattr(importlib.import_module(module), name)
        return tuple(values.names() if hasattr(values, "names") else values)
    return tuple(spec)


# Settings `--resume` may change: how long and how fast the run goes on, not what it is.
RESUMABLE = frozenset(
    {
        "epochs",
        "steps",
        "validation_steps",
        "learning_rate",
        "strategy",
        "jit_compile",
        "intra_op_threads",
        "inter_op_threads",
        "patience",
        "resume",
        "run_dir",
        "bleu_sentences",
        "beam_size",
        "length_penalty",
    }
)


@dataclass
class TrainConfig:
    """Settings of the training loop shared by every task."""

    task: str = option("text", "Task to train (see `lstm-zoo list`).")
    run_dir: str | None = option(None, "Run directory; default runs/<task>-<cell>-<time>.")
    epochs: int = option(5, "Number of epochs (an epoch is `steps` batches).", between=(1, 100_000))
    steps: int | None = option(
        60, "Batches per epoch; 0 = one pass over the training data.", between=(0, 1_000_000_000)
    )
    validation_steps: int | None = option(
        20, "Validation batches per epoch; 0 = all.", between=(0, 1_000_000_000)
    )
    batch_size: int = option(64, "Global batch size (split over replicas).", between=(1, 1_048_576))
    optimizer: str = option(
        "adam",
        "adam (AdamW with --weight_decay), or muon: orthogonalised "
        "momentum for the hidden matrices, AdamW for the rest.",
        OPTIMIZERS,
    )
    learning_rate: float = option(
        2e-3, "Learning rate (the peak, with a schedule).", between=(1e-12, None)
    )
    schedule: str = option(
        "constant",
        "Learning rate: constant, or cosine (warm-up, then a cosine decay to 1% at the last step).",
        SCHEDULES,
    )
    warmup_steps: int = option(
        0, "Cosine schedule: steps of linear warm-up from 0.", between=(0, 1_000_000_000)
    )
    weight_decay: float = option(
        0.0,
        "Decoupled weight decay (AdamW, also under Muon); 0 = none (plain Adam).",
        between=(0.0, 1.0),
    )
    adam_beta2: float = option(
        0.999,
        "Adam's decay rate of the squared-gradient average "
        "(0.99 forgets faster: short runs, small batches).",
        between=(0.0, 0.999999),
    )
    clipnorm: float | None = option(
        1.0, "Clip each gradient to this norm; 0 turns it off.", between=(0.0, None)
    )
    patience: int | None = option(
        None,
        "Stop after this many epochs without a better "
        "validation loss (early stopping); default never.",
        between=(1, 100_000),
    )
    seed: int = option(0, "Seed of weights, data order, dropout and sampling.")
    strategy: str = option(
        "default", "tf.distribute strategy: default, mirrored, multi_worker.", STRATEGIES
    )
    mixed_precision: bool = option(False, "Train under the mixed_bfloat16 policy.")
    jit_compile: bool = option(False, "Compile the train step with XLA.")
    intra_op_threads: int = option(
        0,
        "Threads one TensorFlow op may use; 0 = TensorFlow's default (every core).",
        between=(0, 1024),
    )
    inter_op_threads: int = option(
        0, "TensorFlow ops that may run side by side; 0 = TensorFlow's default.", between=(0, 1024)
    )
    resume: bool = option(False, "Continue the run in run_dir from its last checkpoint.")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            check_range(f.name, value, setting_range(type(self), f.name))
            allowed = f.metadata.get("choices")
            if allowed is not None and value is not None and value not in choices_of(allowed):
                raise ValueError(
                    f"--{f.name}={value}: expected one of "
                    f"{', '.join(map(str, choices_of(allowed)))}"
                )
        self._check_memory()
        cell = getattr(self, "cell", None)
        if cell is not None:
            from zoo import cells  # the registry (imports keras) only when a cell is named

            if cell not in cells.CELLS:
                raise ValueError(
                    f"--cell={cell}: unknown cell; known cells: {', '.join(cells.names())}"
                )

    def _check_memory(self):
        """Refuse sizes whose weights, gradients and Adam moments cannot fit in memory."""
        units = getattr(self, "units", None)
        if not units:
            return
        layers = (
            sum(
                getattr(self, name, None) or 0
                for name in ("layers", "encoder_layers", "decoder_layers")
            )
            or 2
        )
        need = 8 * units * units * layers * 4 * 4  # ~8 H^2 weights a layer; 4 float32 copies
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > have:
            raise ValueError(
                f"--units={units}: about {need / 2**30:.0f} GiB of weights, "
                "gradients and optimizer state, more than this machine's "
                f"{have / 2**30:.0f} GiB of memory"
            )

    def conflicts(self, saved) -> dict:
        """Settings of `self` that differ from the `saved` run's and that resuming cannot change.

        Returns {name: (saved value, this value)}."""
        return {
            f.name: (getattr(saved, f.name), getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in RESUMABLE and getattr(saved, f.name) != getattr(self, f.name)
        }

    def to_json(self) -> str:
        """The config as indented JSON, its class named under "config"."""
        return json.dumps({"config": type(self).__name__, **dataclasses.asdict(self)}, indent=2)

    def save(self, path):
        """Write the config as JSON, atomically."""
        atomic_write(path, self.to_json())

    @classmethod
    def load(cls, path):
        """The config saved at `path` (unknown fields are an error naming the file)."""
        values = migrated(read_json(path, expect=dict))
        for key in ("config", "invocations", "data_fingerprint"):
            values.pop(key, None)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{path}: unknown config fields {unknown} for {cls.__name__}")
        for name, value in values.items():
            if not _has_type(value, str(fields[name].type)):
                raise ValueError(f"{path}: {name}={value!r}, expected {fields[name].type}")
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None


def _has_type(value, annotation: str) -> bool:
    """Whether a JSON value fits a config field's annotation ("int | None", "float", ...)."""
    kinds = {
        "int": (int,),
        "float": (int, float),
        "str": (str,),
        "bool": (bool,),
        "None": (type(None),),
    }
    allowed = tuple(t for part in annotation.split("|") for t in kinds.get(part.strip(), ()))
    if not allowed:
        return True  # an annotation this check does not know
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


# Fields of the music task's saved configs that only the other music task has.
_OTHER_MUSIC_FIELDS = {
    "chorales": ("embedding_dim", "time_aware"),
    "melody": ("steps_per_quarter", "input_noise"),
}


# Settings gone since the tasks read datasets (`pipelines.datasets`): the dataset fixes the
# split and prepares the data once, by task.
_SETTINGS_NOW_DATA = {"translation": ("holdout",), "speech": ("cache_dir",)}


def migrated(values: dict) -> dict:
    """A saved config (or a study's settings) in today's terms: `preset` is read as `size` and
    `peepholes` as `use_peepholes`; the `music` task with `music_format` is read as the
    `chorales` or `melody` task; settings that the datasets hold (`_SETTINGS_NOW_DATA`) are
    dropped."""
    values = dict(values)
    for name in _SETTINGS_NOW_DATA.get(values.get("task"), ()):
        values.pop(name, None)
    if "preset" in values and "size" not in values:
        values["size"] = values.pop("preset")
    if "peepholes" in values and "use_peepholes" not in values:
        values["use_peepholes"] = values.pop("peepholes")
    if values.get("task") == "music":
        values["task"] = values.pop("music_format", "chorales")
        for name in _OTHER_MUSIC_FIELDS.get(values["task"], ()):
            values.pop(name, None)
        values.pop("config", None)
    return values
