"""Moving shapes: next-frame prediction with a ConvLSTM, the `moving_shapes` task.

Each sequence shows a few squares and discs gliding across a dark frame and bouncing off the
walls, drawn procedurally: the `zoo_moving_shapes` dataset, a fixed set of 10,000 training
sequences (and 1,000 each to validate and test) as Moving MNIST is, with a config per frame
size and number of shapes. The model reads frames 1..T-1 and predicts frames 2..T pixel by
pixel (binary cross-entropy on intensities in [0, 1]).

    lstm-zoo train --task=moving_shapes        # or pipelines.moving_shapes.train_demo()
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from pipelines import datasets
from pipelines.configs import TrainConfig, option
from pipelines.datasets.moving_shapes import (  # noqa: F401 (the generator, for notebooks)
    FRAME_SIZES,
    FRAMES,
    SHAPES,
    SIZES,
    render,
)
from pipelines.figures import new_figure, save_png
from pipelines.rundir import default_run_dir
from pipelines.streams import shuffled_batches
from pipelines.tasks import Task, TaskData, register_task
from zoo.cells.conv_lstm import ConvLSTMCell, ConvRNN

STRIP = "strip.png"


@dataclass
class MovingShapesConfig(TrainConfig):
    """Next-frame prediction on procedurally drawn moving shapes."""

    task: str = option("moving_shapes", "Task to train (see `lstm-zoo list`).")
    epochs: int = option(3, "Number of epochs (an epoch is `steps` batches).")
    steps: int | None = option(
        50, "Batches per epoch; 0 = one pass over the 10,000 training sequences."
    )
    validation_steps: int | None = option(4, "Validation batches per epoch.")
    batch_size: int = option(16, "Global batch size (split over replicas).")
    learning_rate: float = option(5e-3, "Adam learning rate.")
    frames: int = option(
        10,
        f"Frames per sequence, at most {FRAMES} (the model predicts frames 2..T).",
        between=(2, 10_000),
    )
    size: int = option(
        16, "Frame height and width in pixels (the dataset config size<S>_shapes<N>).", FRAME_SIZES
    )
    shapes: int = option(2, "Shapes per sequence.", SHAPES)
    filters: int = option(16, "Feature maps of each ConvLSTM layer.", between=(1, 16_384))
    kernel_size: int = option(3, "Convolution window of the ConvLSTM.", between=(1, 99))
    layers: int = option(1, "Stacked ConvLSTM layers.", between=(1, 64))
    use_peepholes: bool = option(True, "Hadamard peepholes V ⊙ c in the gates.")
    eval_sequences: int = option(
        64,
        "Sequences read of the validation and test splits: the "
        f"first of their {SIZES['test']:,} each.",
        between=(1, None),
    )

    def __post_init__(self):
        super().__post_init__()
        if self.frames > FRAMES:
            raise ValueError(
                f"--frames={self.frames}: the zoo_moving_shapes sequences hold {FRAMES} frames"
            )
        if self.eval_sequences > SIZES["test"]:
            raise ValueError(
                f"--eval_sequences={self.eval_sequences}: the zoo_moving_shapes "
                f"dataset holds {SIZES['test']:,} sequences per evaluation split"
            )


def videos(rows, frames=10) -> np.ndarray:
    """The first `frames` frames of dataset rows (`zoo_moving_shapes` examples) as one uint8
    array (sequences, frames, size, size, 1)."""
    return np.stack([row["frames"][:frames] for row in rows])


def _next_frames(batch):
    """(frames 1..T-1, frames 2..T) in [0, 1] of a uint8 batch of sequences."""
    video = tf.cast(batch, tf.float32) / 255.0
    return video[:, :-1], video[:, 1:]


def train_stream(sequences, batch_size, seed, start_step=0) -> tf.data.Dataset:
    """Endless batches of (inputs, targets) of `sequences` (uint8) in the order of
    `streams.shuffled_batches`: batch n is the same from any `start_step`."""
    sequences = tf.constant(sequences)
    return (
        shuffled_batches(int(sequences.shape[0]), batch_size, seed, start_step)
        .map(lambda indices: _next_frames(tf.gather(sequences, indices)))
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(sequences, batch_size) -> tf.data.Dataset:
    """Every sequence once, in order, as batches of (inputs, targets)."""
    return (
        tf.data.Dataset.from_tensor_slices(sequences)
        .batch(batch_size)
        .map(_next_frames)
        .prefetch(tf.data.AUTOTUNE)
    )


def build_model(
    frames=None, size=16, filters=16, kernel_size=3, layers=1, use_peepholes=True, cell_kwargs=None
):
    """ConvLSTM layers -> a 1x1 convolution giving the next frame's logits, per step."""
    inputs = keras.Input((frames, size, size, 1), name="frames")
    x = inputs
    for i in range(layers):
        cell = ConvLSTMCell(
            filters, kernel_size, use_peepholes=use_peepholes, **(cell_kwargs or {})
        )
        x = ConvRNN(cell, return_sequences=True, name=f"conv_lstm_{i}")(x)
    logits = keras.layers.TimeDistributed(keras.layers.Conv2D(1, 1), name="next_frame")(x)
    return keras.Model(inputs, logits, name="moving_shapes")


def save_strip(true, predicted, path, title=None):
    """A PNG of the true frames (top row) over the predicted ones (bottom), written atomically."""
    frames = len(true)
    figure, axes = new_figure(2, frames, figsize=(frames * 0.9, 2.1), squeeze=False)
    for row, (label, video) in enumerate((("true", true), ("predicted", predicted))):
        for t in range(frames):
            axes[row, t].imshow(video[t, ..., 0], cmap="gray", vmin=0, vmax=1)
            axes[row, t].set_xticks([])
            axes[row, t].set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    return save_png(figure, path, dpi=80)


@register_task
class MovingShapesTask(Task):
    """Next-frame prediction with a ConvLSTM; see `MovingShapesConfig` for the settings."""

    name, config_class = "moving_shapes", MovingShapesConfig

    def sequence_length(self, config):
        return config.frames - 1  # inputs are the frames but the last

    def dataset(self, config) -> str:
        """The dataset the task reads: zoo_moving_shapes, its config of size and shapes."""
        return f"zoo_moving_shapes/size{config.size}_shapes{config.shapes}"

    def _videos(self, config, split):
        return videos(datasets.examples(self.dataset(config), split), config.frames)

    def prepare(self, config, run_dir, split=True):
        evaluated = f"[:{config.eval_sequences}]"
        test = eval_dataset(self._videos(config, "test" + evaluated), config.batch_size)
        if not split:
            return TaskData(train=None, validation=None, test=test)
        training = self._videos(config, "train")
        return TaskData(
            train=lambda step: train_stream(training, config.batch_size, config.seed, step),
            validation=eval_dataset(
                self._videos(config, "validation" + evaluated), config.batch_size
            ),
            test=test,
            steps_per_pass=max(1, len(training) // config.batch_size),
            examples=len(training),
        )

    def build_model(self, config, data):
        return build_model(
            config.frames - 1,
            config.size,
            config.filters,
            config.kernel_size,
            config.layers,
            config.use_peepholes,
        )

    def loss(self, config):
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def sample(self, config, run_dir, model, seed=0, output=None):
        """Draws test sequence number `seed`, true vs predicted, as a PNG strip at `output`
        (a path stem; default run_dir/strip); returns the PNG's path."""
        number = seed or 0
        if not 0 <= number < SIZES["test"]:
            raise ValueError(
                f"--seed={number}: the test split holds sequences 0 to {SIZES['test'] - 1}"
            )
        video = self._videos(config, f"test[{number}:{number + 1}]")[0].astype("float32") / 255
        predicted = keras.ops.sigmoid(model(video[None, :-1]))[0]
        path = f"{output}.png" if output else os.path.join(run_dir, STRIP)
        return save_strip(
            video[1:],
            np.asarray(predicted),
            path,
            title="next-frame prediction: true (top) vs ConvLSTM (bottom)",
        )


def train_demo(run_dir=None, verbose="auto", **overrides):
    """Train the moving-shapes task (`overrides`: config fields) and draw the strip.

    Returns (metrics, path of the PNG strip); the run directory defaults to runs/<task>-<time>.
    """
    from pipelines.train import train  # the loop imports the task contract, not the tasks

    config = dataclasses.replace(MovingShapesConfig(run_dir=run_dir), **overrides)
    config = dataclasses.replace(config, run_dir=config.run_dir or default_run_dir(config))
    model, metrics = train(config, verbose=verbose)
    strip = MovingShapesTask().sample(config, config.run_dir, model)
    return metrics, strip
