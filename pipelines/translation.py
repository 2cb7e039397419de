"""Translation: dataset -> splits -> subword ids -> bucketed tf.data, and the task.

The default corpus pairs the King James Bible with the Spanish Reina-Valera 1909 verse by
verse (the `zoo_en_es_verses` dataset: Debian `sword-text-kjv` and `sword-text-sparv`, public
domain; ~31k pairs). Any tab-separated file of source<TAB>target lines works too (--data, the
`zoo_sentence_pairs` dataset). Both are read through `pipelines.datasets`, which fixes the
split (`pipelines.datasets.translation`); the run directory holds the SentencePiece model,
trained on the training split only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from sacrebleu.metrics import BLEU, CHRF

from pipelines import datasets
from pipelines.configs import TrainConfig, option
from pipelines.datasets.translation import SPLITS, read_tsv, write_tsv  # noqa: F401 (notebooks)
from pipelines.streams import shuffled_order
from pipelines.tasks import Task, TaskData, register_task
from zoo.models.seq2seq import from_size
from zoo.subwords import BOS, EOS, PAD, UNK, Subwords, translate  # noqa: F401 (re-exported)

TOKENIZER = "subwords.model"


@dataclass
class TranslationConfig(TrainConfig):
    """An attentional encoder-decoder on sentence pairs."""

    task: str = option("translation", "Task to train (see `lstm-zoo list`).")
    data: str | None = option(
        None,
        "TSV file of source<TAB>target lines; default the "
        "English-Spanish Bible verses (SWORD KJV and RV 1909).",
    )
    vocab_size: int = option(
        4000, "SentencePiece vocabulary shared by both languages.", between=(8, 1_048_576)
    )
    max_len: int = option(
        64, "Longest training pair in subword tokens (longer are dropped).", between=(2, 65_536)
    )
    cell: str = option("lstm", "Registered cell name.")
    size: str = option(
        "small", "Model size: a key of zoo.models.seq2seq.SIZES.", "zoo.models.seq2seq:SIZES"
    )
    units: int | None = option(
        None, "Hidden units per layer; default the size's.", between=(1, 65_536)
    )
    embedding_dim: int | None = option(
        None, "Embedding width; default the size's.", between=(1, 65_536)
    )
    encoder_layers: int | None = option(
        None, "Encoder layers; default the size's.", between=(1, 64)
    )
    decoder_layers: int | None = option(
        None, "Decoder layers; default the size's.", between=(1, 64)
    )
    bidirectional: bool = option(True, "Bidirectional encoder layers.")
    attention: str = option(
        "luong", "Attention score: luong, scaled_luong or bahdanau.", "zoo.registry:ATTENTIONS"
    )
    dropout: float = option(
        0.2, "Dropout on embeddings, between layers and before the output.", between=(0.0, 0.95)
    )
    beam_size: int = option(
        4, "Beam size of the test-set evaluation and of `sample`.", between=(1, 1024)
    )
    length_penalty: float = option(
        0.6, "GNMT length penalty alpha of beam search.", between=(0.0, 10.0)
    )
    bleu_sentences: int | None = option(
        500, "Test pairs translated for BLEU/chrF; 0 = none, default 500.", between=(0, None)
    )


def pair_splits(dataset, data=None, split=True) -> dict[str, list[tuple[str, str]]]:
    """The (source, target) pairs of each split of a pairs dataset
    (`pipelines.datasets.translation`), or of the whole corpus as "test" without `split` (a
    file's pairs in line order)."""
    if split:
        return {
            name: [(row["source"], row["target"]) for row in datasets.examples(dataset, name, data)]
            for name in SPLITS
        }
    rows = sorted(
        (row for name in SPLITS for row in datasets.examples(dataset, name, data)),
        key=lambda row: row.get("line", 0),
    )
    return {"test": [(row["source"], row["target"]) for row in rows]}


def check_earlier_split(run_dir, test_pairs):
    """Refuse a run directory of an earlier lstm-zoo whose own split (its test.tsv, drawn with
    the run's --seed and --holdout) is not the dataset's: its test pairs may be trained on."""
    path = os.path.join(run_dir, "test.tsv")
    if not os.path.isfile(path):
        return
    clean = lambda text: " ".join(text.split())  # as the earlier split files were written
    if read_tsv(path, warn=False) != [(clean(s), clean(t)) for s, t in test_pairs]:
        raise ValueError(
            f"{path}: the run was split by an earlier lstm-zoo (with its --seed and "
            "--holdout), not as the dataset is; score it on its own test pairs "
            f"with `lstm-zoo evaluate --run_dir={run_dir} --data={path}`"
        )


# -- subwords -------------------------------------------------------------------------------------
def encode_pairs(subwords, pairs, max_len=None):
    """(source ids + eos, target ids) arrays of lists, dropping pairs longer than max_len."""
    sources = subwords.encode(s for s, _ in pairs)
    targets = subwords.encode(t for _, t in pairs)
    kept = [
        (s + [EOS], t)
        for s, t in zip(sources, targets)
        if max_len is None or max(len(s) + 1, len(t) + 1) <= max_len
    ]
    return [s for s, _ in kept], [t for _, t in kept]


def _ragged(rows):
    lengths = [len(r) for r in rows]
    flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=sum(lengths))
    return tf.RaggedTensor.from_row_lengths(flat, np.asarray(lengths, np.int64))


def _bucketed(indices, sources, targets, batch_size, max_len, drop_remainder=False):
    """((source, target_in), target_out) batches of pairs of similar length, padded with 0."""

    def example(i):
        target = targets[i]
        return (sources[i], tf.concat([[BOS], target], 0), tf.concat([target, [EOS]], 0))

    boundaries = list(range(8, max(max_len, 9), 8))
    return (
        indices.map(example)
        .bucket_by_sequence_length(
            lambda s, t_in, t_out: tf.maximum(tf.shape(s)[0], tf.shape(t_in)[0]),
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            drop_remainder=drop_remainder,
        )
        .map(lambda s, t_in, t_out: ((s, t_in), t_out))
    )


def train_stream(sources, targets, batch_size, max_len, seed, start_step=0):
    """Endless bucketed batches of the pairs in `streams.shuffled_order`, so batch n is the
    same whether the stream starts at 0 or at `start_step` = n."""
    sources, targets = _ragged(sources), _ragged(targets)
    indices = shuffled_order(sources.nrows(), seed)
    return (
        _bucketed(indices, sources, targets, batch_size, max_len, drop_remainder=True)
        .skip(start_step)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(sources, targets, batch_size, max_len):
    """Every pair once, bucketed by length; cached after the first pass."""
    sources, targets = _ragged(sources), _ragged(targets)
    indices = tf.data.Dataset.range(sources.nrows())
    dataset = _bucketed(indices, sources, targets, batch_size, max_len).cache()
    batches = sum(1 for _ in dataset)  # fills the cache; Keras wants a known cardinality
    return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(
        tf.data.AUTOTUNE
    )


# -- translating and scoring ------------------------------------------------------------------
def score(hypotheses, references):
    """Corpus BLEU and chrF (sacrebleu's defaults) of hypotheses against one reference each,
    with their sacrebleu signatures ("nrefs:1|case:mixed|...") under *_signature."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(
            f"score: {len(hypotheses)} hypotheses for {len(references)} "
            "references; expected as many, at least one"
        )
    report = {}
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        report[name] = metric.corpus_score(hypotheses, [references]).score
        report[f"{name}_signature"] = str(metric.get_signature())
    return report


def bleu_report(model, subwords, pairs, beam_size=4, length_penalty=0.6):
    """BLEU and chrF of greedy and (if beam_size > 1) beam-search translations of `pairs`,
    with the metrics' sacrebleu signatures ("bleu_signature", "chrf_signature")."""
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    report = {"bleu_sentences": len(pairs)}
    searches = {"greedy": 1, f"beam{beam_size}": beam_size} if beam_size > 1 else {"greedy": 1}
    for name, beam in searches.items():
        hypotheses = translate(
            model, subwords, sources, beam, length_penalty, progress=f"BLEU, {name}"
        )
        for key, value in score(hypotheses, references).items():
            report[key if key.endswith("_signature") else f"{key}_{name}"] = value
    return report


# -- the task -------------------------------------------------------------------------------------
@register_task
class TranslationTask(Task):
    """Translation with an attentional encoder-decoder; see `TranslationConfig`."""

    name, config_class = "translation", TranslationConfig
    export_kind = "seq2seq"

    def inputs(self, config, split=True):
        return (TOKENIZER,)

    def dataset(self, config) -> str:
        """The dataset the task reads: the verse pairs, or a local --data TSV file."""
        return "zoo_sentence_pairs" if config.data else "zoo_en_es_verses"

    def prepare(self, config, run_dir, split=True):
        splits = pair_splits(self.dataset(config), config.data, split)
        if split:
            check_earlier_split(run_dir, splits["test"])
        tokenizer_path = os.path.join(run_dir, TOKENIZER)
        if os.path.isfile(tokenizer_path):
            subwords = Subwords.load(tokenizer_path)
        else:
            train = splits["train"]
            subwords = Subwords.train(
                [s for s, _ in train] + [t for _, t in train], config.vocab_size
            )
            subwords.save(tokenizer_path)
        encoded = {
            name: encode_pairs(subwords, pairs, config.max_len) for name, pairs in splits.items()
        }
        for name, (sources, _) in encoded.items():
            if not sources:
                raise ValueError(
                    f"{config.data or self.dataset(config)}: no {name} pair is within "
                    f"--max_len={config.max_len} subword tokens"
                )
        batch, max_len = config.batch_size, config.max_len
        return TaskData(
            train=(lambda step: train_stream(*encoded["train"], batch, max_len, config.seed, step))
            if split
            else None,
            validation=eval_dataset(*encoded["validation"], batch, max_len) if split else None,
            test=eval_dataset(*encoded["test"], batch, max_len),
            steps_per_pass=max(1, len(encoded.get("train", encoded["test"])[0]) // batch),
            examples=len(encoded["train"][0]) if split else None,
            info={
                "subwords": subwords,
                "test_pairs": splits["test"],
                "validation_pairs": splits.get("validation", []),
                "pairs": {k: len(v[0]) for k, v in encoded.items()},
            },
        )

    def build_model(self, config, data):
        sizes = {
            k: getattr(config, k)
            for k in ("units", "embedding_dim", "encoder_layers", "decoder_layers")
            if getattr(config, k) is not None
        }
        vocab = len(data.info["subwords"])
        return from_size(
            config.size,
            vocab,
            vocab,
            cell=config.cell,
            bidirectional=config.bidirectional,
            attention=config.attention,
            dropout=config.dropout,
            **sizes,
        )

    def loss(self, config):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)

    def headline(self, config):
        if not config.bleu_sentences:
            return "perplexity", True
        return (f"bleu_beam{config.beam_size}" if config.beam_size > 1 else "bleu_greedy"), False

    def summarize(self, config, logs):
        return {
            f"{prefix}perplexity": float(math.exp(min(logs[f"{prefix}loss"], 50.0)))
            for prefix in ("", "val_")
            if f"{prefix}loss" in logs
        }

    def score(self, config, model, data):
        """BLEU and chrF, greedy and beam, on the first `bleu_sentences` test pairs."""
        pairs = data.info["test_pairs"][: config.bleu_sentences]
        if not pairs:
            return {}
        return bleu_report(
            model, data.info["subwords"], pairs, config.beam_size, config.length_penalty
        )

    def sample(
        self,
        config,
        run_dir,
        model,
        text=None,
        beam_size=None,
        length_penalty=None,
        seed=None,
        **unused,
    ):
        """The translation of `text`."""
        if unused:
            raise ValueError(
                f"The translation task does not take --{', --'.join(unused)}; "
                "use --text, --beam_size, --length_penalty"
            )
        if not text or not text.strip():
            raise ValueError("`lstm-zoo sample --task=translation` needs --text=SENTENCE")
        subwords = Subwords.load(os.path.join(run_dir, TOKENIZER))
        beam = config.beam_size if beam_size is None else beam_size
        alpha = config.length_penalty if length_penalty is None else length_penalty
        return translate(model, subwords, [text], beam, alpha)[0]

    def export_options(self, config, data, count, seq_len=None):
        """The translator's export (`zoo.export.export_seq2seq`): the first `count` test pairs
        that fit in `seq_len` (default --max_len) source tokens for parity (greedy agreement
        with Keras, BLEU of the greedy translations, bits per target token teacher-forced:
        the quality gate), as many validation pairs for int8 calibration, and the
        SentencePiece model beside the file, named in the metadata with its special ids."""
        import dataclasses

        max_source_len, subwords = seq_len or config.max_len, data.info["subwords"]

        def fitting(pairs):
            """Sources, targets (+ eos) and reference texts of the first `count` pairs that
            fit in max_source_len tokens."""
            pairs = pairs[: max(1, count)]
            kept = [
                (source, target + [EOS], text)
                for source, target, (_, text) in zip(*encode_pairs(subwords, pairs), pairs)
                if max(len(source), len(target) + 1) <= max_source_len
            ]
            return [list(column) for column in zip(*kept)] or [[], [], []]

        sources, targets, references = fitting(data.info["test_pairs"])
        if not sources:
            raise ValueError(f"No test sentence fits in max_source_len={max_source_len}")

        def bleu(translations):
            hypotheses = [subwords.decode(np.array([ids]))[0] for ids in translations]
            return score(hypotheses, references)["bleu"]

        return {
            "sources": sources,
            "targets": targets,
            "start_id": BOS,
            "end_id": EOS,
            "calibration": list(zip(*fitting(data.info["validation_pairs"])[:2])) or None,
            "bleu": bleu,
            "max_source_len": max_source_len,
            "max_length": 2 * max_source_len + 10,
            "files": {TOKENIZER: subwords.proto},
            "metadata": {
                "task": config.task,
                "config": dataclasses.asdict(config),
                "tokenizer": TOKENIZER,
                "token_ids": {"pad": PAD, "unk": UNK, "bos": BOS, "eos": EOS},
                "source_suffix": [EOS],
            },
        }
