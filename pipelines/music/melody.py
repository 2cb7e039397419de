"""The `melody` task: folk tunes as (pitch, duration) events for a melody language model.

lstm-zoo train --task=melody --run_dir=runs/folk
lstm-zoo sample --run_dir=runs/folk --beam_size=4 --prompt=primer.mid
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.configs import option
from pipelines.music.common import MusicConfig, MusicTask
from pipelines.music.midi import (
    STEPS_PER_QUARTER,
    events_to_midi,
    midi_to_events,
    midi_to_roll,
    read_midi,
)
from pipelines.streams import token_window_stream, token_windows
from pipelines.tasks import TaskData, bits, register_task
from zoo import decoding
from zoo.models import melody as melody_models
from zoo.models.melody import REST, EventVocabulary


def transpose(events, semitones, vocabulary=None):
    """Melody events shifted by `semitones`, or None if a pitch would leave the range."""
    vocabulary = vocabulary or EventVocabulary()
    events = np.array(events, copy=True)
    sounding = events[:, 0] != REST
    events[sounding, 0] += semitones
    shifted = events[sounding, 0]
    inside = np.all((shifted >= vocabulary.lowest) & (shifted <= vocabulary.highest))
    return events if inside else None


def melody_tokens(pieces, vocabulary=None, transpositions=0):
    """One token stream: END, tune, END, tune, ..., END; each tune also transposed by every
    shift in -transpositions..transpositions that keeps it in range (augmentation)."""
    vocabulary = vocabulary or EventVocabulary()
    stream = [np.array([vocabulary.END], dtype=np.int32)]
    for events in pieces:
        for shift in range(-transpositions, transpositions + 1):
            moved = transpose(events, shift, vocabulary)
            if moved is not None and len(moved):
                stream += [vocabulary.encode(moved), stream[0]]
    return np.concatenate(stream)


# -- the task ---------------------------------------------------------------------------------
@dataclass
class MelodyConfig(MusicConfig):
    """Folk melodies (note events), bits per event."""

    task: str = option("melody", "Task to train (see `lstm-zoo list`).")
    size: str = option(
        "small", "Model size: a key of zoo.models.melody.SIZES.", "zoo.models.melody:SIZES"
    )
    embedding_dim: int | None = option(
        None, "Event embedding width; default the size's.", between=(1, 65_536)
    )
    time_aware: bool = option(
        False,
        "Every layer also reads the time since the previous "
        "event (quarters) as its last feature; automatic for tlstm.",
    )


@register_task
class MelodyTask(MusicTask):
    """Folk melodies for a melody language model; see `MelodyConfig`."""

    name, config_class = "melody", MelodyConfig
    corpus_dataset, folder_dataset, feature = "zoo_folk_tunes", "zoo_midi_melodies", "events"

    def prepare(self, config, run_dir, split=True):
        pieces = self.pieces(config, split)
        batch, window = config.batch_size, config.seq_len
        tokens = {n: melody_tokens(p) for n, p in pieces.items()}
        if split:
            tokens["train"] = melody_tokens(pieces["train"], None, config.transpositions)
        for name, ids in tokens.items():
            if len(ids) <= window:
                raise ValueError(
                    f"The {name} split has {len(ids)} events, fewer than one "
                    f"window of --seq_len={window}"
                )
        evaluation = {n: token_windows(ids, window, batch) for n, ids in tokens.items()}
        return TaskData(
            train=(
                lambda step: token_window_stream(tokens["train"], window, batch, config.seed, step)
            )
            if split
            else None,
            validation=evaluation.get("validation"),
            test=evaluation["test" if split else "all"],
            steps_per_pass=max(1, len(tokens.get("train", [])) // window // batch),
            examples=len(tokens["train"]) // window if split else None,
            info={"pieces": {n: len(p) for n, p in pieces.items()}},
        )

    def build_model(self, config, data):
        return melody_models.melody_model(
            size=config.size,
            cell=config.cell,
            dropout=config.dropout,
            time_aware=config.time_aware,
            **self.sizes(config, ("units", "layers", "embedding_dim")),
        )

    def headline(self, config):
        return "bits_per_event", True

    def summarize(self, config, logs):
        return {
            f"{prefix}bits_per_event": bits(logs[f"{prefix}loss"])
            for prefix in ("", "val_")
            if f"{prefix}loss" in logs
        }

    def compose(
        self,
        config,
        model,
        primer,
        length,
        path,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        beam_size=None,
    ):
        events = generate_melody(
            model,
            primer=None if primer is None else midi_to_events(primer),
            length=length or 128,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            beam_size=beam_size,
        )
        midi_path = events_to_midi(events, path)
        vocabulary = EventVocabulary()
        roll = midi_to_roll(
            read_midi(midi_path), lowest=vocabulary.lowest, highest=vocabulary.highest
        )
        return midi_path, roll, STEPS_PER_QUARTER, vocabulary.lowest


def generate_melody(
    model,
    primer=None,
    length=128,
    temperature=1.0,
    top_k=None,
    top_p=None,
    seed=None,
    beam_size=None,
    vocabulary=None,
):
    """Melody events (n, 2) from a melody `LanguageModel`, continuing `primer` events if given.

    Samples (temperature, top-k, top-p) `length` events, or with `beam_size` finds the most
    likely continuation by beam search; stops at the end of the tune.
    """
    import tensorflow as tf

    vocabulary = vocabulary or EventVocabulary()
    start = [vocabulary.END]
    if primer is not None and len(primer):
        start += vocabulary.encode(primer).tolist()
    ids = np.array([start], dtype=np.int32)
    step = tf.function(model.step, reduce_retracing=True)
    if beam_size:
        states = model.initial_state(1)
        for t in range(ids.shape[1] - 1):
            _, states = step(ids[:, t], states)
        tokens, _ = decoding.beam_search(
            step,
            states,
            ids[:, -1],
            vocabulary.END,
            length,
            beam_size=beam_size,
            pad_id=vocabulary.PAD,
        )
        tokens = np.asarray(tokens)[0]
    else:
        tokens = decoding.generate(
            step, model.initial_state(1), ids, length, temperature, top_k, top_p, seed
        )[0]
    ends = np.flatnonzero(tokens == vocabulary.END)
    tokens = tokens[: ends[0]] if len(ends) else tokens
    return np.concatenate([vocabulary.decode(start), vocabulary.decode(tokens)])
