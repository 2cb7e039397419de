"""Moving-shapes task: the drawn sequences and their dataset, batches, a short ConvLSTM
training, the PNG strip, export."""

import numpy as np
import pytest

from pipelines import datasets, moving_shapes
from pipelines.datasets.moving_shapes import FIRST_ID
from pipelines.export import export_run
from pipelines.train import get_task


def test_frames_are_seeded_bounded_and_moving():
    video = moving_shapes.render(3, seed=1, frames=6, size=12)
    assert video.shape == (6, 12, 12, 1) and video.dtype == np.float32
    np.testing.assert_array_equal(video, moving_shapes.render(3, seed=1, frames=6, size=12))
    assert not np.array_equal(video, moving_shapes.render(4, seed=1, frames=6, size=12))
    assert video.min() == 0 and video.max() == 1
    assert all(video[t].sum() > 0 for t in range(6))
    assert not np.array_equal(video[0], video[-1])
    # a shorter sequence is a prefix of a longer one: the dataset's 20 frames serve any --frames
    np.testing.assert_array_equal(video, moving_shapes.render(3, seed=1, frames=20, size=12)[:6])


def test_the_dataset_holds_the_drawn_sequences():
    rows = datasets.examples("zoo_moving_shapes", "test[:2]")
    for i, row in enumerate(rows):
        assert row["id"] == FIRST_ID["test"] + i and row["frames"].dtype == np.uint8
        np.testing.assert_array_equal(row["frames"] / 255, moving_shapes.render(row["id"]))
    assert moving_shapes.videos(rows, frames=4).shape == (2, 4, 16, 16, 1)


def test_batches_pair_frames_with_their_successors_and_resume_exactly():
    sequences = (
        np.stack([moving_shapes.render(i, frames=4, size=16) for i in range(5)]) * 255
    ).astype(np.uint8)
    inputs, targets = next(iter(moving_shapes.eval_dataset(sequences, batch_size=2)))
    assert inputs.shape == targets.shape == (2, 3, 16, 16, 1)
    np.testing.assert_array_equal(inputs[0, 1:], targets[0, :-1])
    np.testing.assert_array_equal(targets[1], moving_shapes.render(1, 0, 4, 16)[1:])
    stream = list(moving_shapes.train_stream(sequences, 2, seed=3).take(6))
    resumed = list(moving_shapes.train_stream(sequences, 2, seed=3, start_step=4).take(2))
    for (a, _), (b, _) in zip(stream[4:], resumed):
        np.testing.assert_array_equal(a, b)


def test_settings_pick_a_config_and_stay_within_the_dataset():
    task = moving_shapes.MovingShapesTask()
    assert task.dataset(moving_shapes.MovingShapesConfig()) == "zoo_moving_shapes/size16_shapes2"
    assert (
        task.dataset(moving_shapes.MovingShapesConfig(size=32, shapes=3))
        == "zoo_moving_shapes/size32_shapes3"
    )
    with pytest.raises(ValueError, match="--frames=1"):
        moving_shapes.MovingShapesConfig(frames=1)
    with pytest.raises(ValueError, match="--frames=21: the zoo_moving_shapes sequences hold 20"):
        moving_shapes.MovingShapesConfig(frames=21)
    with pytest.raises(ValueError, match="--size=8: expected one of 16, 32"):
        moving_shapes.MovingShapesConfig(size=8)
    with pytest.raises(ValueError, match="--eval_sequences=1001: .* 1,000 sequences"):
        moving_shapes.MovingShapesConfig(eval_sequences=1001)


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_draws_the_strip(tmp_path):
    metrics, strip = moving_shapes.train_demo(
        run_dir=str(tmp_path / "run"),
        verbose=0,
        epochs=2,
        steps=12,
        batch_size=8,
        frames=5,
        filters=4,
        eval_sequences=16,
        validation_steps=1,
        learning_rate=0.02,
    )
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < losses[0], losses
    with open(strip, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert get_task("moving_shapes").config_class is moving_shapes.MovingShapesConfig
    config = moving_shapes.MovingShapesConfig(run_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="--seed=1000: the test split holds sequences 0 to 999"):
        moving_shapes.MovingShapesTask().sample(config, config.run_dir, None, seed=1000)
    # predict over 4 frames; the gate is lifted to read the score: a toy trained for 24 steps
    # says nothing about what int8 costs a trained model, so only the bookkeeping is checked
    manifest = export_run(
        str(tmp_path / "run"), format="tflite", quantize=["none", "int8"], allow_quality_loss=True
    )
    assert manifest["signatures"]["predict"]["inputs"]["x"]["shape"] == [1, 4, 16, 16, 1]
    parity = manifest["files"]["model.tflite"]["parity"]
    assert max(parity["max_abs_diff"].values()) < 1e-4
    int8 = manifest["files"]["model_int8.tflite"]  # scored by the next frame's NLL
    score = int8["parity"]["score"]
    assert int8["quality_metric"] == score["metric"] == "nats_per_step"
    assert np.isfinite(score["keras"]) and score["keras"] > 0
    assert int8["quality_loss"] == pytest.approx(score["tflite"] - score["keras"])
