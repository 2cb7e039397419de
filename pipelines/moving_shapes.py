"""Moving shapes: next-frame prediction with a ConvLSTM, the `moving_shapes` task.

Each sequence shows a few squares and discs gliding across a dark frame and bouncing off the
walls, drawn procedurally: sequence i of a seed is always the same, so there is nothing to
download and a resumed run sees the same batches. The model reads frames 1..T-1 and predicts
frames 2..T pixel by pixel (binary cross-entropy on intensities in [0, 1]).

    lstm-zoo train --task=moving_shapes        # or pipelines.moving_shapes.train_demo()
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from pipelines.configs import TrainConfig, option
from pipelines.train import Task, TaskData, register_task, train
from zoo.cells.conv_lstm import ConvLSTMCell, ConvRNN
from zoo.files import atomic_path

STRIP = "strip.png"
# Sequence ids are disjoint per split: ids below VALIDATION_START train, then validation, test.
VALIDATION_START, TEST_START = 10**9, 2 * 10**9


@dataclass
class MovingShapesConfig(TrainConfig):
    """Next-frame prediction on procedurally drawn moving shapes."""

    task: str = option("moving_shapes", "Task to train (see `lstm-zoo list`).")
    epochs: int = option(3, "Number of epochs (an epoch is `steps` batches).")
    steps: int | None = option(50, "Batches per epoch.")
    validation_steps: int | None = option(4, "Validation batches per epoch.")
    batch_size: int = option(16, "Global batch size (split over replicas).")
    learning_rate: float = option(5e-3, "Adam learning rate.")
    frames: int = option(10, "Frames per sequence (the model predicts frames 2..T).")
    size: int = option(16, "Frame height and width in pixels.")
    shapes: int = option(2, "Shapes per sequence.")
    filters: int = option(16, "Feature maps of each ConvLSTM layer.")
    kernel_size: int = option(3, "Convolution window of the ConvLSTM.")
    layers: int = option(1, "Stacked ConvLSTM layers.")
    peepholes: bool = option(True, "Hadamard peepholes V ⊙ c in the gates.")
    eval_sequences: int = option(64, "Sequences in each of the validation and test splits.")


def render(sequence_id, seed=0, frames=10, size=16, shapes=2):
    """Frames (frames, size, size, 1) float32 in [0, 1] of sequence `sequence_id` of `seed`."""
    rng = np.random.default_rng([seed, sequence_id])
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    video = np.zeros((frames, size, size, 1), "float32")
    for _ in range(shapes):
        radius = rng.uniform(size / 10, size / 6)
        position = rng.uniform(radius, size - radius, 2)
        velocity = rng.uniform(-1, 1, 2) * size / 12
        square = rng.random() < 0.5
        for t in range(frames):
            dy, dx = np.abs(rows - position[0]), np.abs(cols - position[1])
            inside = np.maximum(dy, dx) <= radius if square else np.hypot(dy, dx) <= radius
            video[t, ..., 0] = np.maximum(video[t, ..., 0], inside)
            position += velocity
            for axis in range(2):  # bounce off the walls
                if not radius <= position[axis] <= size - radius:
                    velocity[axis] *= -1
                    position[axis] = np.clip(position[axis], radius, size - radius)
    return video


def dataset(first_id, count=None, seed=0, frames=10, size=16, shapes=2, batch_size=16):
    """Batches of (frames 1..T-1, frames 2..T) for sequence ids first_id, first_id + 1, ...

    Endless when `count` is None.
    """
    spec = tf.TensorSpec((frames - 1, size, size, 1), tf.float32)

    def generate():
        ids = range(first_id, first_id + count) if count is not None else _count(first_id)
        for i in ids:
            video = render(i, seed, frames, size, shapes)
            yield video[:-1], video[1:]

    data = tf.data.Dataset.from_generator(generate, output_signature=(spec, spec))
    if count is not None:  # a known length lets Keras evaluate to the end without warnings
        data = data.apply(tf.data.experimental.assert_cardinality(count))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _count(start):
    while True:
        yield start
        start += 1


def build_model(frames=None, size=16, filters=16, kernel_size=3, layers=1, peepholes=True,
                cell_kwargs=None):
    """ConvLSTM layers -> a 1x1 convolution giving the next frame's logits, per step."""
    inputs = keras.Input((frames, size, size, 1), name="frames")
    x = inputs
    for i in range(layers):
        cell = ConvLSTMCell(filters, kernel_size, peepholes=peepholes, **(cell_kwargs or {}))
        x = ConvRNN(cell, return_sequences=True, name=f"conv_lstm_{i}")(x)
    logits = keras.layers.TimeDistributed(keras.layers.Conv2D(1, 1), name="next_frame")(x)
    return keras.Model(inputs, logits, name="moving_shapes")


def save_strip(true, predicted, path, title=None):
    """A PNG of the true frames (top row) over the predicted ones (bottom), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    frames = len(true)
    figure, axes = plt.subplots(2, frames, figsize=(frames * 0.9, 2.1), squeeze=False)
    for row, (label, video) in enumerate((("true", true), ("predicted", predicted))):
        for t in range(frames):
            axes[row, t].imshow(video[t, ..., 0], cmap="gray", vmin=0, vmax=1)
            axes[row, t].set_xticks([])
            axes[row, t].set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


@register_task
class MovingShapesTask(Task):
    """Next-frame prediction with a ConvLSTM; see `MovingShapesConfig` for the settings."""

    name, config_class = "moving_shapes", MovingShapesConfig

    def sequence_length(self, config):
        return config.frames - 1  # inputs are the frames but the last

    def _data_args(self, config):
        return dict(seed=config.seed, frames=config.frames, size=config.size,
                    shapes=config.shapes, batch_size=config.batch_size)

    def prepare(self, config, run_dir, split=True):
        if config.frames < 2:
            raise ValueError(f"--frames must be at least 2. Received: --frames={config.frames}")
        args = self._data_args(config)
        return TaskData(
            train=(lambda step: dataset(step * config.batch_size, **args)) if split else None,
            validation=dataset(VALIDATION_START, config.eval_sequences, **args) if split else None,
            test=dataset(TEST_START, config.eval_sequences, **args),
            steps_per_pass=config.steps or 50,
        )

    def build_model(self, config, data):
        return build_model(config.frames - 1, config.size, config.filters, config.kernel_size,
                           config.layers, config.peepholes)

    def loss(self, config):
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def sample(self, config, run_dir, model, seed=0, output=None):
        """Draws test sequence number `seed`, true vs predicted, as a PNG strip at `output`
        (a path stem; default run_dir/strip); returns the PNG's path."""
        video = render(TEST_START + (seed or 0), config.seed, config.frames, config.size,
                       config.shapes)
        predicted = keras.ops.sigmoid(model(video[None, :-1]))[0]
        path = f"{output}.png" if output else os.path.join(run_dir, STRIP)
        return save_strip(video[1:], np.asarray(predicted), path,
                          title="next-frame prediction: true (top) vs ConvLSTM (bottom)")


def train_demo(run_dir=None, verbose="auto", **overrides):
    """Train the moving-shapes task (`overrides`: config fields) and draw the strip.

    Returns (metrics, path of the PNG strip); the run directory defaults to runs/<task>-<time>.
    """
    config = dataclasses.replace(MovingShapesConfig(run_dir=run_dir), **overrides)
    model, metrics = train(config, verbose=verbose)
    strip = MovingShapesTask().sample(config, config.run_dir, model)
    return metrics, strip
