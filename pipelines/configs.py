"""Experiment configs: dataclasses with defaults and one help line per field.

`TrainConfig` holds what the training loop needs for any task; each task extends it with its
own fields (`TextConfig`). The command line builds its flags from these fields, and the final
config is saved as JSON in the run directory, so a run is rebuilt from its directory alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from zoo.files import atomic_write


def option(default, help):
    """A dataclass field with a default and its help line (shown by `lstm-zoo --help`)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Settings of the training loop shared by every task."""

    task: str = option("text", "Task to train (see `lstm-zoo list`).")
    run_dir: str | None = option(None, "Run directory; default runs/<task>-<cell>-<time>.")
    epochs: int = option(5, "Number of epochs (an epoch is `steps` batches).")
    steps: int | None = option(60, "Batches per epoch; 0 = one pass over the training data.")
    validation_steps: int | None = option(20, "Validation batches per epoch; 0 = all.")
    batch_size: int = option(64, "Global batch size (split over replicas).")
    learning_rate: float = option(2e-3, "Adam learning rate.")
    clipnorm: float | None = option(1.0, "Clip each gradient to this norm; 0 turns it off.")
    seed: int = option(0, "Seed of weights, data order, dropout and sampling.")
    strategy: str = option("default", "tf.distribute strategy: default, mirrored, multi_worker.")
    mixed_precision: bool = option(False, "Train under the mixed_bfloat16 policy.")
    jit_compile: bool = option(False, "Compile the train step with XLA.")
    resume: bool = option(False, "Continue the run in run_dir from its last checkpoint.")

    def to_json(self) -> str:
        return json.dumps({"config": type(self).__name__, **dataclasses.asdict(self)}, indent=2)

    def save(self, path):
        """Write the config as JSON, atomically."""
        atomic_write(path, self.to_json())

    @classmethod
    def load(cls, path):
        """The config saved at `path` (unknown fields are an error naming the file)."""
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        values.pop("config", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: unknown config fields {unknown} for {cls.__name__}")
        return cls(**values)


@dataclass
class TextConfig(TrainConfig):
    """A language model on a text corpus (character or word level)."""

    data: str | None = option(None, "UTF-8 text file or folder; default the Shakespeare corpus.")
    level: str = option("char", "Tokens: char or word.")
    max_tokens: int | None = option(None, "Largest vocabulary (most frequent tokens); default all.")
    seq_len: int = option(100, "Tokens per training window (truncated BPTT length).")
    cell: str = option("lstm", "Registered cell name.")
    preset: str = option("small", "Model size: a key of zoo.models.language_model.PRESETS.")
    units: int | None = option(None, "Hidden units per layer; default the preset's.")
    layers: int | None = option(None, "Stacked recurrent layers; default the preset's.")
    embedding_dim: int | None = option(None, "Embedding width; default the preset's.")
    dropout: float = option(0.0, "Dropout on the embedding and between layers.")
