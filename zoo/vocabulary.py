"""Characters or words <-> ids: the vocabulary a language model's ids stand for."""

from __future__ import annotations

import collections
import json
import re

import numpy as np

from zoo.files import atomic_write, read_json

LEVELS = ("char", "word")
# Words and punctuation keep one leading space, so joining the tokens gives the text back.
_WORD = re.compile(r" ?\w+| ?[^\w\s]| +|\s")


class Vocabulary:
    """Characters or words <-> ids; id 0 is the unknown token.

    Args:
        tokens: the vocabulary, unknown token first (e.g. "[UNK]").
        level: "char" or "word".

    Example:
        vocab = Vocabulary.build(["To be, or not to be"], "char")
        vocab.decode(vocab.encode("to be"))  # "to be"
    """

    def __init__(self, tokens, level="char"):
        if level not in LEVELS:
            raise ValueError(f"Unknown level. Received: level={level!r}; expected char or word")
        self.tokens, self.level = list(tokens), level
        self.index = {token: i for i, token in enumerate(self.tokens) if i}

    @classmethod
    def build(cls, texts, level="char", max_tokens=None):
        """The `max_tokens` most frequent tokens of `texts` (ties by token), plus "[UNK]"."""
        counts = collections.Counter()
        for text in texts:
            counts.update(cls.split(text, level))
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        return cls(["[UNK]"] + ranked[: None if max_tokens is None else max_tokens - 1], level)

    @staticmethod
    def split(text, level):
        """The tokens of `text`: its characters (level "char") or its words and punctuation."""
        return list(text) if level == "char" else _WORD.findall(text)

    def __len__(self):
        return len(self.tokens)

    def encode(self, text) -> np.ndarray:
        """Token ids (int32) of `text`; unknown tokens are 0."""
        tokens = self.split(text, self.level)
        return np.fromiter((self.index.get(t, 0) for t in tokens), np.int32, len(tokens))

    def decode(self, ids) -> str:
        """Text of token ids."""
        return "".join(self.tokens[i] for i in np.asarray(ids, np.int64).reshape(-1))

    def save(self, path):
        """Write the vocabulary as JSON (level and tokens), atomically."""
        atomic_write(
            path, json.dumps({"level": self.level, "tokens": self.tokens}, ensure_ascii=False)
        )

    @classmethod
    def load(cls, path):
        """The vocabulary saved at `path`; ValueError naming the file if it is not one."""
        saved = read_json(path, expect=dict)
        if not isinstance(saved.get("tokens"), list) or saved.get("level") not in LEVELS:
            raise ValueError(f'{path}: not a vocabulary (expected "tokens" and "level")')
        return cls(saved["tokens"], saved["level"])
