"""Spoken words: CTC labelling of synthesised speech, the `speech` task.

Utterances of one to `max_words` English words, spoken offline by Debian's `espeak-ng` with
varied voices, speeds and pitches (the `zoo_speech_words` dataset, one config per
`max_words`), are turned into log-mel spectrograms with tf.signal in the tf.data pipeline and
labelled by their characters only: no alignment of letters to frames is given, which is what
CTC learns.

    lstm-zoo train --task=speech               # or pipelines.speech.train_demo()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from pipelines import datasets
from pipelines.configs import TrainConfig, option
from pipelines.datasets.speech import (  # noqa: F401 (the generator, for notebooks)
    MAX_WORDS,
    SAMPLE_RATE,
    SIZES,
    WORDS,
    synthesize,
    utterance,
)
from pipelines.rundir import default_run_dir
from pipelines.tasks import Task, TaskData, register_task
from zoo.models.ctc import CTCModel, label_error_rate

ALPHABET = " abcdefghijklmnopqrstuvwxyz"  # label k is ALPHABET[k - 1]; 0 is CTC's blank


@dataclass
class SpeechConfig(TrainConfig):
    """Character labelling of synthesised spoken words with a CTC-trained recurrent model."""

    task: str = option("speech", "Task to train (see `lstm-zoo list`).")
    epochs: int = option(10, "Number of epochs (an epoch is `steps` batches).")
    steps: int | None = option(0, "Batches per epoch; 0 = one pass over the training data.")
    validation_steps: int | None = option(0, "Validation batches per epoch; 0 = all.")
    batch_size: int = option(32, "Global batch size (split over replicas).")
    learning_rate: float = option(3e-3, "Adam learning rate.")
    cell: str = option("lstm", "Registered cell name.")
    units: int = option(96, "Hidden units per direction and layer.", between=(1, 65_536))
    layers: int = option(2, "Stacked bidirectional recurrent layers.", between=(1, 64))
    utterances: int = option(
        SIZES["train"],
        f"Training utterances: the first of the dataset's {SIZES['train']:,}.",
        between=(1, None),
    )
    eval_utterances: int = option(
        SIZES["test"],
        "Utterances of the validation and test splits "
        f"read: the first of their {SIZES['test']} each.",
        between=(1, None),
    )
    max_words: int = option(
        2, "Words per utterance (1 to max_words): the dataset config wordsN.", MAX_WORDS
    )
    mel_bins: int = option(40, "Log-mel channels per frame.", between=(1, 1024))
    frame_ms: float = option(20.0, "Hop between frames in milliseconds.", between=(1.0, 1000.0))

    def __post_init__(self):
        super().__post_init__()
        for name, split in (("utterances", "train"), ("eval_utterances", "test")):
            if getattr(self, name) > SIZES[split]:
                raise ValueError(
                    f"--{name}={getattr(self, name)}: the zoo_speech_words dataset "
                    f"holds {SIZES[split]:,} utterances per {split} split"
                )


def log_mel(waveform, mel_bins=40, frame_ms=20.0, sample_rate=SAMPLE_RATE):
    """Log-mel spectrogram (frames, mel_bins) of a float32 waveform (samples,), normalised per
    utterance to zero mean, unit variance per channel; works on tensors (tf.data) and arrays.

    A frame every `frame_ms` (the hop), windows of two hops, mel filters from 60 to 7,600 Hz.
    """
    step = int(sample_rate * frame_ms / 1000)
    mel = tf.signal.linear_to_mel_weight_matrix(
        mel_bins, step + 1, sample_rate, lower_edge_hertz=60.0, upper_edge_hertz=7600.0
    )
    stft = tf.signal.stft(
        tf.convert_to_tensor(waveform, tf.float32),
        frame_length=2 * step,
        frame_step=step,
        fft_length=2 * step,
        pad_end=True,
    )
    features = tf.math.log(tf.abs(stft) @ mel + 1e-6)
    mean, variance = tf.nn.moments(features, axes=[0])
    return (features - mean) / (tf.sqrt(variance) + 1e-5)


def encode(text) -> np.ndarray:
    """Label ids 1..27 of the characters of `text` (a-z and space)."""
    unknown = sorted(set(text) - set(ALPHABET))
    if unknown:
        raise ValueError(f"Characters {unknown} are not in the alphabet. Received: text={text!r}")
    return np.array([ALPHABET.index(c) + 1 for c in text], "int32")


def decode(labels) -> str:
    """The text of label ids (0 and ids out of range are skipped)."""
    return "".join(ALPHABET[i - 1] for i in labels if 0 < i <= len(ALPHABET))


def utterances(rows, mel_bins=40, frame_ms=20.0) -> tf.data.Dataset:
    """({"features", "lengths"}, labels) of dataset rows (`zoo_speech_words` examples), the
    log-mel features computed once by tf.signal and cached."""

    def ragged(arrays, dtype):
        return tf.RaggedTensor.from_row_lengths(
            np.concatenate(arrays).astype(dtype), [len(a) for a in arrays]
        )

    waves = ragged([row["audio"] for row in rows], np.int16)
    labels = ragged([encode(row["text"]) for row in rows], np.int32)

    def example(i):
        features = log_mel(tf.cast(waves[i], tf.float32) / 32768.0, mel_bins, frame_ms)
        return {"features": features, "lengths": tf.shape(features)[0]}, labels[i]

    return tf.data.Dataset.range(len(rows)).map(example).cache()


def dataset(data, batch_size=32, shuffle_seed=None, start_step=0):
    """Padded batches of `utterances`; endless and shuffled by `shuffle_seed` (from batch
    `start_step` on) when it is given."""
    if shuffle_seed is not None:
        count = int(data.cardinality())
        data = data.shuffle(count, seed=shuffle_seed).repeat().skip(start_step * batch_size)
    return data.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)


def transcribe(model, data, strategy="greedy", beam_width=16):
    """(references, hypotheses) as texts over a dataset of batches."""
    references, hypotheses = [], []
    for inputs, labels in data:
        hypotheses += [decode(h) for h in model.decode(inputs, strategy, beam_width)]
        references += [decode(row) for row in labels.numpy()]
    return references, hypotheses


def character_error_rate(model, data, strategy="greedy", beam_width=16):
    """Label (character) error rate of `model` on `data`."""
    references, hypotheses = transcribe(model, data, strategy, beam_width)
    return label_error_rate(references, hypotheses)


@register_task
class SpeechTask(Task):
    """CTC labelling of synthesised spoken words; see `SpeechConfig` for the settings."""

    name, config_class = "speech", SpeechConfig

    def sequence_length(self, config):
        """Frames of an export's fixed `predict` window: two seconds (utterances are padded)."""
        return round(2000 / config.frame_ms)

    def dataset(self, config) -> str:
        """The dataset the task reads: zoo_speech_words, its config of `max_words`."""
        return f"zoo_speech_words/words{config.max_words}"

    def _utterances(self, config, split, count):
        rows = datasets.examples(self.dataset(config), f"{split}[:{count}]")
        return utterances(rows, config.mel_bins, config.frame_ms)

    def prepare(self, config, run_dir, split=True):
        test = self._utterances(config, "test", config.eval_utterances)
        data = TaskData(
            train=None,
            validation=None,
            test=dataset(test, config.batch_size),
            info={"mel_bins": config.mel_bins},
        )
        if split:
            training = self._utterances(config, "train", config.utterances)
            validation = self._utterances(config, "validation", config.eval_utterances)
            data.train = lambda step: dataset(training, config.batch_size, config.seed, step)
            data.validation = dataset(validation, config.batch_size)
            data.steps_per_pass = max(1, config.utterances // config.batch_size)
            data.examples = config.utterances
        return data

    def build_model(self, config, data):
        model = CTCModel(len(ALPHABET), cell=config.cell, units=config.units, layers=config.layers)
        model(
            {
                "features": np.zeros((1, 4, config.mel_bins), "float32"),
                "lengths": np.array([4], "int32"),
            }
        )
        return model

    def loss(self, config):
        return None  # CTCModel computes its CTC loss itself

    def sample(self, config, run_dir, model, beam_size=16, count=8, seed=None):
        """Transcriptions of `count` test utterances next to the truth, and the test LER;
        beam search with `beam_size` beams (1: greedy decoding)."""
        strategy = "greedy" if beam_size == 1 else "beam_search"
        data = self.prepare(config, run_dir, split=False).test
        references, hypotheses = transcribe(model, data, strategy, beam_size)
        lines = [f"{r!r:>24} -> {h!r}" for r, h in zip(references[:count], hypotheses)]
        rate = label_error_rate(references, hypotheses)
        return "\n".join([*lines, f"label error rate ({strategy}): {rate:.3f}"])


def train_demo(run_dir=None, verbose="auto", **overrides):
    """Train the speech task (`overrides`: config fields); returns (metrics, model).

    The metrics gain the test label error rates of greedy and beam-search decoding.
    """
    from pipelines.train import train  # the loop imports the task contract, not the tasks

    config = dataclasses.replace(SpeechConfig(run_dir=run_dir), **overrides)
    config = dataclasses.replace(config, run_dir=config.run_dir or default_run_dir(config))
    model, metrics = train(config, verbose=verbose)
    test = SpeechTask().prepare(config, config.run_dir, split=False).test
    for strategy in ("greedy", "beam_search"):
        metrics["test"][f"label_error_rate_{strategy}"] = character_error_rate(
            model, test, strategy
        )
    return metrics, model
