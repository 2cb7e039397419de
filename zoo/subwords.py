"""Subword tokenisation shared by both languages of a translator, and batched translation.

`Subwords` wraps a SentencePiece model (ids 0-3: pad, unk, bos, eos); `translate` runs a
`zoo.models.seq2seq.Seq2Seq` over a list of sentences. Used by the translation task and by
the translation presets (`zoo.presets`).
"""

from __future__ import annotations

import io
import sys

import keras
import numpy as np
import sentencepiece as spm
from tqdm import tqdm

from zoo.files import atomic_write

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class Subwords:
    """A SentencePiece model shared by both languages; ids 0-3 are pad, unk, bos, eos.

    Reference: T. Kudo, J. Richardson, "SentencePiece: A simple and language independent
    subword tokenizer and detokenizer for Neural Text Processing", EMNLP 2018.
    """

    def __init__(self, model_proto: bytes):
        self.proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts, vocab_size=8000):
        """Train on `texts` (an iterable of sentences); a smaller vocabulary if they are few."""
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            character_coverage=1.0,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            num_threads=2,
            minloglevel=2,
        )
        return cls(model.getvalue())

    @classmethod
    def load(cls, path):
        """The model saved at `path`; ValueError naming the file if it is not one."""
        with open(path, "rb") as f:
            proto = f.read()
        try:
            subwords = cls(proto)
        except RuntimeError:
            subwords = None
        if subwords is None or not len(subwords):
            raise ValueError(f"{path}: not a SentencePiece model")
        return subwords

    def save(self, path):
        """Write the model, atomically."""
        atomic_write(path, self.proto)

    def __len__(self):
        return self.processor.get_piece_size()

    def encode(self, texts):
        """Lists of ids (no bos/eos) of a list of strings."""
        return self.processor.encode(list(texts))

    def decode(self, ids):
        """Text of ids (batch, time); each row is cut at its first eos (or pad)."""
        rows = []
        for row in np.asarray(ids).tolist():
            ends = [i for i, t in enumerate(row) if t in (EOS, PAD)]
            rows.append(row[: ends[0]] if ends else row)
        return self.processor.decode(rows)


# -- tf.data --------------------------------------------------------------------------------------


def translate(
    model,
    subwords,
    texts,
    beam_size=1,
    length_penalty=0.6,
    batch_size=64,
    max_length=None,
    max_source_length=None,
    progress=None,
):
    """Translations of `texts` (a list of strings), batched by length, greedy if beam_size=1.

    Args:
        max_length: most target tokens (default twice the longest source, plus 10).
        max_source_length: source ids (eos included) are cut to this many; None keeps all.
        progress: a description to show a progress bar over batches on a terminal (stderr).
    """
    cut = max_source_length - 1 if max_source_length else None
    sources = [ids[:cut] + [EOS] for ids in subwords.encode(texts)]
    longest = max((len(s) for s in sources), default=1)
    max_length = max_length or 2 * longest + 10
    order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
    outputs = [""] * len(texts)
    starts = range(0, len(order), batch_size)
    for start in tqdm(
        starts,
        desc=progress,
        unit="batch",
        file=sys.stderr,
        leave=False,
        disable=None if progress else True,
    ):
        chunk = order[start : start + batch_size]
        batch = keras.utils.pad_sequences([sources[i] for i in chunk], padding="post", value=PAD)
        ids, _ = model.generate(
            batch,
            BOS,
            EOS,
            max_length=max_length,
            beam_size=beam_size,
            length_penalty=length_penalty,
        )
        for i, text in zip(chunk, subwords.decode(ids)):
            outputs[i] = text
    return outputs
