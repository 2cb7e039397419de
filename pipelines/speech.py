"""Spoken words: CTC labelling of synthesised speech, the `speech` task.

Utterances of one to `max_words` English words are spoken offline by Debian's `espeak-ng`
with varied voices, speeds and pitches, turned into log-mel spectrograms with tf.signal, and
labelled by their characters only: no alignment of letters to frames is given, which is what
CTC learns. Utterance i of a seed is always the same; the corpus is synthesised once and
cached (an .npz in the run directory, or in --cache_dir).

    lstm-zoo train --task=speech               # or pipelines.speech.train_demo()
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.configs import TrainConfig, option
from pipelines.train import Task, TaskData, default_run_dir, register_task, train
from zoo.files import atomic_path
from zoo.models.ctc import CTCModel, label_error_rate

# The words spoken: digits, then short common words (all lower-case a-z).
WORDS = (
    "zero one two three four five six seven eight nine "
    "yes no up down left right on off stop go red green blue black white cat dog bird fish tree"
).split()
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
VARIANTS = ("", "+m3", "+f2", "+f4")
ALPHABET = " abcdefghijklmnopqrstuvwxyz"  # label k is ALPHABET[k - 1]; 0 is CTC's blank
SAMPLE_RATE = 22050  # espeak-ng's output rate


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
    units: int = option(96, "Hidden units per direction and layer.")
    layers: int = option(2, "Stacked bidirectional recurrent layers.")
    utterances: int = option(1200, "Training utterances (synthesised once, then cached).")
    eval_utterances: int = option(100, "Utterances in each of the validation and test splits.")
    max_words: int = option(2, "Words per utterance (1 to max_words).")
    mel_bins: int = option(40, "Log-mel channels per frame.")
    frame_ms: float = option(20.0, "Hop between frames in milliseconds.")
    cache_dir: str | None = option(None, "Folder of the synthesised corpus; default run_dir.")


def espeak_path() -> str:
    """Path of the espeak-ng program, or FileNotFoundError saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise FileNotFoundError(
            "espeak-ng not found: the speech task synthesises its corpus with it; "
            "install it with `apt-get install espeak-ng`")
    return path


def utterance(index, seed=0, max_words=2):
    """(text, voice, speed, pitch) of utterance `index` of `seed`."""
    rng = np.random.default_rng([seed, index])
    words = rng.choice(WORDS, size=rng.integers(1, max_words + 1))
    voice = VOICES[rng.integers(len(VOICES))] + VARIANTS[rng.integers(len(VARIANTS))]
    return " ".join(words), voice, int(rng.integers(130, 200)), int(rng.integers(25, 75))


def synthesize(text, voice="en-us", speed=160, pitch=50) -> np.ndarray:
    """The waveform (samples,) float32 in [-1, 1] of `text` spoken by espeak-ng."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.wav")
        subprocess.run([espeak_path(), "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", path, text], check=True, capture_output=True)
        with wave.open(path) as f:
            if f.getframerate() != SAMPLE_RATE or f.getsampwidth() != 2:
                raise ValueError(f"espeak-ng wrote {f.getframerate()} Hz, "
                                 f"{8 * f.getsampwidth()}-bit audio; expected {SAMPLE_RATE} Hz "
                                 "16-bit")
            samples = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    return samples.astype("float32") / 32768.0


def log_mel(waveform, mel_bins=40, frame_ms=20.0, sample_rate=SAMPLE_RATE) -> np.ndarray:
    """Log-mel spectrogram (frames, mel_bins), normalised per utterance to zero mean, unit
    variance per channel."""
    features = _log_mel_function(mel_bins, frame_ms, sample_rate)(waveform).numpy()
    return (features - features.mean(0)) / (features.std(0) + 1e-5)


@functools.lru_cache(maxsize=8)
def _log_mel_function(mel_bins, frame_ms, sample_rate):
    """A traced-once tf.function: waveform (samples,) -> log-mel (frames, mel_bins)."""
    step = int(sample_rate * frame_ms / 1000)
    mel = tf.signal.linear_to_mel_weight_matrix(
        mel_bins, step + 1, sample_rate, lower_edge_hertz=60.0, upper_edge_hertz=7600.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def features(waveform):
        stft = tf.signal.stft(waveform, frame_length=2 * step, frame_step=step,
                              fft_length=2 * step, pad_end=True)
        return tf.math.log(tf.abs(stft) @ mel + 1e-6)

    return features


def encode(text) -> np.ndarray:
    """Label ids 1..27 of the characters of `text` (a-z and space)."""
    unknown = sorted(set(text) - set(ALPHABET))
    if unknown:
        raise ValueError(f"Characters {unknown} are not in the alphabet. Received: text={text!r}")
    return np.array([ALPHABET.index(c) + 1 for c in text], "int32")


def decode(labels) -> str:
    """The text of label ids (0 and ids out of range are skipped)."""
    return "".join(ALPHABET[i - 1] for i in labels if 0 < i <= len(ALPHABET))


def corpus(first, count, seed=0, max_words=2, mel_bins=40, frame_ms=20.0, cache_dir=None):
    """(features list of (frames, mel_bins), texts) of utterances first..first+count-1.

    Cached in `cache_dir` as an .npz named after its arguments (written atomically).
    """
    key = hashlib.sha1(repr((first, count, seed, max_words, mel_bins, frame_ms, WORDS,
                             VOICES, VARIANTS)).encode()).hexdigest()[:12]
    path = os.path.join(cache_dir, f"speech-{key}.npz") if cache_dir else None
    if path and os.path.isfile(path):
        with np.load(path) as cached:
            splits = np.cumsum(cached["lengths"])[:-1]
            return np.split(cached["features"], splits), [str(t) for t in cached["texts"]]
    features, texts = [], []
    for i in tqdm(range(first, first + count), desc="Synthesising speech", unit="utterance",
                  disable=None):  # silent unless stderr is a terminal
        text, voice, speed, pitch = utterance(i, seed, max_words)
        features.append(log_mel(synthesize(text, voice, speed, pitch), mel_bins, frame_ms))
        texts.append(text)
    if path:
        with atomic_path(path) as tmp:
            np.savez(tmp, features=np.concatenate(features).astype("float32"),
                     lengths=np.array([len(f) for f in features]), texts=np.array(texts))
    return features, texts


def dataset(features, texts, batch_size=32, shuffle_seed=None, start_step=0):
    """Padded batches of ({"features", "lengths"}, labels); endless and shuffled by
    `shuffle_seed` (from batch `start_step` on) when it is given."""
    mel_bins = features[0].shape[-1]

    def generate():
        for f, t in zip(features, texts):
            yield {"features": f, "lengths": np.int32(len(f))}, encode(t)

    signature = ({"features": tf.TensorSpec((None, mel_bins), tf.float32),
                  "lengths": tf.TensorSpec((), tf.int32)}, tf.TensorSpec((None,), tf.int32))
    data = tf.data.Dataset.from_generator(generate, output_signature=signature)
    data = data.apply(tf.data.experimental.assert_cardinality(len(texts))).cache()
    if shuffle_seed is not None:
        data = data.shuffle(len(texts), seed=shuffle_seed).repeat().skip(start_step * batch_size)
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

    def _corpus(self, config, run_dir, first, count):
        return corpus(first, count, config.seed, config.max_words, config.mel_bins,
                      config.frame_ms, config.cache_dir or run_dir)

    def prepare(self, config, run_dir, split=True):
        train_end = config.utterances
        test = self._corpus(config, run_dir, train_end + config.eval_utterances,
                            config.eval_utterances)
        data = TaskData(train=None, validation=None, test=dataset(*test, config.batch_size),
                        info={"mel_bins": config.mel_bins})
        if split:
            training = self._corpus(config, run_dir, 0, config.utterances)
            validation = self._corpus(config, run_dir, train_end, config.eval_utterances)
            data.train = lambda step: dataset(*training, config.batch_size, config.seed, step)
            data.validation = dataset(*validation, config.batch_size)
            data.steps_per_pass = max(1, config.utterances // config.batch_size)
            data.examples = config.utterances
        return data

    def build_model(self, config, data):
        model = CTCModel(len(ALPHABET), cell=config.cell, units=config.units,
                         layers=config.layers)
        model({"features": np.zeros((1, 4, config.mel_bins), "float32"),
               "lengths": np.array([4], "int32")})
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
    config = dataclasses.replace(SpeechConfig(run_dir=run_dir), **overrides)
    config = dataclasses.replace(config, run_dir=config.run_dir or default_run_dir(config))
    model, metrics = train(config, verbose=verbose)
    test = SpeechTask().prepare(config, config.run_dir, split=False).test
    for strategy in ("greedy", "beam_search"):
        metrics["test"][f"label_error_rate_{strategy}"] = character_error_rate(
            model, test, strategy)
    return metrics, model
