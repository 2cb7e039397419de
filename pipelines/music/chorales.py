"""The `chorales` task: Bach chorales as piano rolls for a polyphonic model (NLL per step).

lstm-zoo train --task=chorales --cell=cifg_lstm --steps_per_quarter=1 --run_dir=runs/bach
lstm-zoo sample --run_dir=runs/bach --output=bach      # bach.mid and bach.png
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.configs import option
from pipelines.music.common import MusicConfig, MusicTask
from pipelines.music.midi import (
    HIGHEST,
    LOWEST,
    PITCHES,
    STEPS_PER_QUARTER,
    VOICES,
    grid_to_roll,
    midi_to_roll,
    roll_to_grid,
    roll_to_midi,
)
from pipelines.tasks import TaskData, register_task
from zoo.models import polyphonic


def transposed_grids(grids, transpositions):
    """Every SATB grid shifted by each of -transpositions..transpositions semitones that keeps
    its pitches in LOWEST..HIGHEST (augmentation; shift 0 is the grid itself)."""
    shifted = []
    for grid in grids:
        sounding = grid > 0
        for shift in range(-transpositions, transpositions + 1):
            pitches = grid[sounding] + shift
            if pitches.size and (pitches.min() < LOWEST or pitches.max() > HIGHEST):
                continue
            moved = grid.copy()
            moved[sounding] = pitches
            shifted.append(moved)
    return shifted


# -- tf.data ----------------------------------------------------------------------------------
def frames(grid, steps_per_quarter=STEPS_PER_QUARTER):
    """Piano roll of a grid at a coarser resolution (a divisor of STEPS_PER_QUARTER)."""
    if STEPS_PER_QUARTER % steps_per_quarter:
        raise ValueError(
            f"`steps_per_quarter` must divide {STEPS_PER_QUARTER}. "
            f"Received: steps_per_quarter={steps_per_quarter}"
        )
    return grid_to_roll(np.asarray(grid)[:: STEPS_PER_QUARTER // steps_per_quarter])


def chorale_pairs(grid, steps_per_quarter=STEPS_PER_QUARTER):
    """(inputs, targets) of one chorale: the piano roll, and the roll shifted by a zero frame."""
    roll = frames(grid, steps_per_quarter).astype(np.float32)
    return np.concatenate([np.zeros_like(roll[:1]), roll[:-1]]), roll


def chorale_windows(grids, window, steps_per_quarter=STEPS_PER_QUARTER):
    """Arrays (n, window, P) of inputs and targets: every chorale cut into windows (truncated
    BPTT); the last window of a chorale is padded (inputs with 0, targets with -1)."""
    inputs, targets = [], []
    for grid in grids:
        x, y = chorale_pairs(grid, steps_per_quarter)
        pad = -len(x) % window
        inputs.append(np.pad(x, ((0, pad), (0, 0))).reshape(-1, window, x.shape[1]))
        targets.append(
            np.pad(y, ((0, pad), (0, 0)), constant_values=-1).reshape(-1, window, y.shape[1])
        )
    return np.concatenate(inputs).astype(np.int8), np.concatenate(targets).astype(np.int8)


def chorale_train_stream(
    grids, window, batch_size, seed, start_step=0, steps_per_quarter=STEPS_PER_QUARTER
):
    """Endless (inputs, targets) batches of shuffled chorale windows, (batch, window, P) each,
    in the order of `streams.shuffled_batches` (batch n is the same from any `start_step`)."""
    import tensorflow as tf

    from pipelines.streams import shuffled_batches

    inputs, targets = (tf.constant(a) for a in chorale_windows(grids, window, steps_per_quarter))
    if inputs.shape[0] < batch_size:
        raise ValueError(
            f"The chorales give {inputs.shape[0]} windows of {window} steps, fewer "
            f"than one batch of --batch_size={batch_size}"
        )

    def gather(batch):
        return (
            tf.cast(tf.gather(inputs, batch), tf.float32),
            tf.cast(tf.gather(targets, batch), tf.float32),
        )

    return (
        shuffled_batches(inputs.shape[0], batch_size, seed, start_step)
        .map(gather)
        .prefetch(tf.data.AUTOTUNE)
    )


def chorale_dataset(grids, batch_size=16, steps_per_quarter=STEPS_PER_QUARTER):
    """Whole chorales once, in order, as padded batches (inputs padded with 0, targets with -1)."""
    import tensorflow as tf

    pairs = [chorale_pairs(grid, steps_per_quarter) for grid in grids]
    if not pairs:
        raise ValueError("No chorales to batch (an empty split?)")
    spec = tf.TensorSpec((None, PITCHES), tf.float32)
    data = tf.data.Dataset.from_generator(lambda: iter(pairs), output_signature=(spec, spec))
    batches = -(-len(pairs) // batch_size)
    return (
        data.padded_batch(batch_size, padding_values=(0.0, -1.0))
        .apply(tf.data.experimental.assert_cardinality(batches))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )


# -- the task ---------------------------------------------------------------------------------
@dataclass
class ChoralesConfig(MusicConfig):
    """Polyphonic Bach chorales (piano rolls), NLL per time step."""

    task: str = option("chorales", "Task to train (see `lstm-zoo list`).")
    size: str = option(
        "small", "Model size: a key of zoo.models.polyphonic.SIZES.", "zoo.models.polyphonic:SIZES"
    )
    steps_per_quarter: int = option(4, "Time steps per quarter note: 4, 2 or 1.", between=(1, 4))
    input_noise: float = option(
        0.0, "Std of Gaussian noise added to the input frames in training.", between=(0.0, 10.0)
    )


@register_task
class ChoralesTask(MusicTask):
    """Bach chorales for a polyphonic model; see `ChoralesConfig`."""

    name, config_class = "chorales", ChoralesConfig
    corpus_dataset, folder_dataset, feature = "zoo_bach_chorales", "zoo_midi_chorales", "grid"

    def prepare(self, config, run_dir, split=True):
        pieces = self.pieces(config, split)
        batch, window, spq = config.batch_size, config.seq_len, config.steps_per_quarter
        grids = transposed_grids(pieces.get("train", []), config.transpositions)
        evaluation = {n: chorale_dataset(p, batch, spq) for n, p in pieces.items()}
        windows = sum(-(-len(frames(g, spq)) // window) for g in grids)
        return TaskData(
            train=(lambda step: chorale_train_stream(grids, window, batch, config.seed, step, spq))
            if split
            else None,
            validation=evaluation.get("validation"),
            test=evaluation["test" if split else "all"],
            steps_per_pass=max(1, windows // batch),
            examples=windows if split else None,
            info={"pieces": {n: len(p) for n, p in pieces.items()}},
        )

    def build_model(self, config, data):
        if config.size not in polyphonic.SIZES:
            raise KeyError(
                f"Unknown size {config.size!r}. Known sizes: {', '.join(polyphonic.SIZES)}"
            )
        return polyphonic.PolyphonicModel(
            PITCHES,
            cell=config.cell,
            dropout=config.dropout,
            input_noise=config.input_noise,
            **{**polyphonic.SIZES[config.size], **self.sizes(config)},
        )

    def loss(self, config):
        return polyphonic.FrameNLL()

    def metrics(self, config):
        return [polyphonic.NLLPerStep()]

    def headline(self, config):
        return "nll", True

    def compose(self, config, model, primer, length, path, temperature=1.0, seed=None, **unused):
        spq = config.steps_per_quarter
        roll = polyphonic.sample(
            model,
            length or 64 * spq,
            primer=None
            if primer is None
            else frames(roll_to_grid(midi_to_roll(primer)), spq)[None],
            temperature=temperature,
            max_voices=len(VOICES),
            seed=seed,
        )[0]
        return roll_to_midi(roll, path, steps_per_quarter=spq), roll, spq, LOWEST
