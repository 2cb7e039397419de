"""Trained presets that ship with the zoo: configuration, weights, vocabulary and model card.

A preset (keras-hub's meaning of the word) is a folder `zoo/presets/<name>/` holding

    card.json      the model card: task, data and split, cell, parameters, the command that
                   trained it, steps, CPU-minutes, test metrics, library versions, and the
                   sha256 of every other file (checked on use: a damaged preset is named)
    config.json    the training config (what `lstm-zoo train` saved in the run directory)
    model.json     the Keras model, serialized (`keras.saving.serialize_keras_object`)
    weights.npz    its weights, float16 (the card's metrics are measured with them)
    vocab.json     the vocabulary of a language model, if the task has one
    subwords.model the SentencePiece model of a translator
    classes.json   the class names of a classifier

Use:

    preset = zoo.presets.load("shakespeare_lstm")
    print(preset.generate("ROMEO:", length=300, temperature=0.8, seed=0))
    preset.model          # the keras.Model; preset.card, preset.vocabulary
    zoo.presets.load("en_es_lstm").translate("And God said, Let there be light.")

or from the command line `lstm-zoo presets`, `lstm-zoo sample --preset=NAME`,
`lstm-zoo evaluate --preset=NAME`, `lstm-zoo export --preset=NAME`. Presets are made from a run
directory with `python -m pipelines.presets NAME --run_dir=DIR`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from zoo import decoding
from zoo.files import read_json
from zoo.vocabulary import Vocabulary

ROOT = Path(__file__).parent
CARD, CONFIG, MODEL, WEIGHTS, VOCAB = (
    "card.json",
    "config.json",
    "model.json",
    "weights.npz",
    "vocab.json",
)
SUBWORDS = "subwords.model"
CLASSES = "classes.json"  # a classifier's class names
TOKENIZERS = (VOCAB, SUBWORDS, CLASSES)  # what a run holds besides the model and config


def names() -> list[str]:
    """The shipped presets' names."""
    return sorted(p.parent.name for p in ROOT.glob(f"*/{CARD}"))


def directory(name: str) -> Path:
    """The folder of preset `name`; KeyError listing the presets for an unknown name."""
    if name not in names():
        raise KeyError(f"Unknown preset {name!r}. Known presets: {', '.join(names()) or 'none'}")
    return ROOT / name


def card(name: str) -> dict:
    """The model card of preset `name` (see the module docstring)."""
    return read_json(directory(name) / CARD, expect=dict)


def digest(path) -> str:
    """The sha256 of the file at `path`, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_files(name: str) -> dict:
    """The card of preset `name`, after checking the files it lists against their sha256:
    a missing file is a FileNotFoundError, a changed or truncated one a ValueError."""
    folder, info = directory(name), card(name)
    for file, expected in (info.get("files") or {}).items():
        path = folder / file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing from preset {name}; reinstall lstm-zoo")
        if digest(path) != expected:
            raise ValueError(
                f"{path}: not the file preset {name} shipped with (truncated or "
                "changed); reinstall lstm-zoo"
            )
    return info


def load_model(name: str) -> keras.Model:
    """The trained Keras model of preset `name` (float32 weights, not compiled)."""
    folder = directory(name)
    model = keras.saving.deserialize_keras_object(read_json(folder / MODEL, expect=dict))
    try:
        with np.load(folder / WEIGHTS) as saved:
            weights = [saved[f"w{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{folder / WEIGHTS}: unreadable weights ({error}); reinstall lstm-zoo"
        ) from None
    if len(weights) != len(model.weights):
        raise ValueError(
            f"{folder / WEIGHTS}: {len(weights)} arrays for a model of {len(model.weights)} weights"
        )
    model.set_weights([w.astype(v.dtype) for w, v in zip(weights, model.weights)])
    return model


def save_model(model: keras.Model, folder) -> None:
    """Write `model` as model.json and float16 weights.npz into `folder` (atomically)."""
    from zoo.files import atomic_path, atomic_write

    folder = Path(folder)
    serialized = keras.saving.serialize_keras_object(model)
    serialized.pop("compile_config", None)  # a preset is for inference: no optimizer
    if "dtype" in serialized.get("config", {}):  # computes in float32 whatever it trained in
        serialized["config"]["dtype"] = keras.saving.serialize_keras_object(
            keras.DTypePolicy("float32")
        )
    atomic_write(folder / MODEL, json.dumps(serialized))
    with atomic_path(folder / WEIGHTS) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f, **{f"w{i}": np.asarray(w, np.float16) for i, w in enumerate(model.get_weights())}
        )


@dataclass
class Preset:
    """A loaded preset: the model, its card and its vocabulary (language models) or subword
    model (translators)."""

    name: str
    model: keras.Model
    card: dict
    vocabulary: Vocabulary | None = None
    subwords: object | None = None  # zoo.subwords.Subwords

    @functools.cached_property
    def _step(self):
        import tensorflow as tf

        return tf.function(self.model.step, reduce_retracing=True)

    def generate(
        self,
        prompt: str = "\n",
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> str:
        """`prompt` continued by `length` sampled tokens (language-model presets)."""
        if self.vocabulary is None:
            raise TypeError(
                f"Preset {self.name!r} ({self.card.get('task')}) has no vocabulary, "
                "so it does not generate text; use `lstm-zoo sample "
                f"--preset={self.name}`"
            )
        ids = self.vocabulary.encode(prompt or "\n")
        if ids.size == 0:
            ids = self.vocabulary.encode("\n")
        tokens = decoding.generate(
            self._step,
            self.model.initial_state(1),
            ids[None],
            length,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return prompt + self.vocabulary.decode(tokens[0])

    def translate(
        self, text: str | list[str], beam_size: int = 4, length_penalty: float = 0.6
    ) -> str | list[str]:
        """The translation of a sentence, or of a list of them (translator presets)."""
        if self.subwords is None:
            raise TypeError(f"Preset {self.name!r} ({self.card.get('task')}) does not translate")
        from zoo.subwords import translate

        texts = [text] if isinstance(text, str) else list(text)
        outputs = translate(self.model, self.subwords, texts, beam_size, length_penalty)
        return outputs[0] if isinstance(text, str) else outputs


def load(name: str) -> Preset:
    """Preset `name`: its model, model card and vocabulary or subword model, ready to use."""
    info = check_files(name)
    folder = directory(name)
    vocabulary = Vocabulary.load(folder / VOCAB) if (folder / VOCAB).is_file() else None
    subwords = None
    if (folder / SUBWORDS).is_file():
        try:
            from zoo.subwords import Subwords
        except ModuleNotFoundError as error:
            raise ImportError(
                f"Preset {name!r} needs {error.name}: pip install 'lstm-zoo[translation]'"
            ) from None
        subwords = Subwords.load(folder / SUBWORDS)
    return Preset(name, load_model(name), info, vocabulary, subwords)
