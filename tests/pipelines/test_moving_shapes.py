"""Moving-shapes task: seeded frames, batches, a short ConvLSTM training, the PNG strip, export."""

import numpy as np
import pytest

from pipelines import moving_shapes
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


def test_dataset_pairs_frames_with_their_successors():
    inputs, targets = next(iter(moving_shapes.dataset(5, count=3, frames=4, size=8, batch_size=2)))
    assert inputs.shape == targets.shape == (2, 3, 8, 8, 1)
    np.testing.assert_array_equal(inputs[0, 1:], targets[0, :-1])
    np.testing.assert_array_equal(targets[1], moving_shapes.render(6, 0, 4, 8)[1:])


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_draws_the_strip(tmp_path):
    metrics, strip = moving_shapes.train_demo(
        run_dir=str(tmp_path / "run"), verbose=0, epochs=2, steps=6, batch_size=8, size=8,
        frames=5, filters=4, eval_sequences=16, validation_steps=1, learning_rate=0.02,
    )
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < losses[0], losses
    with open(strip, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert get_task("moving_shapes").config_class is moving_shapes.MovingShapesConfig
    # predict over 4 frames; this toy loses about 0.07 nats per frame in int8 (the default
    # run 0.04), so the gate is lifted to read the score
    manifest = export_run(str(tmp_path / "run"), format="tflite", quantize=["none", "int8"],
                          allow_quality_loss=True)
    assert manifest["signatures"]["predict"]["inputs"]["x"]["shape"] == [1, 4, 8, 8, 1]
    parity = manifest["files"]["model.tflite"]["parity"]
    assert max(parity["max_abs_diff"].values()) < 1e-4
    int8 = manifest["files"]["model_int8.tflite"]  # scored by the next frame's NLL
    assert int8["quality_metric"] == "nats_per_step" and abs(int8["quality_loss"]) <= 0.2


def test_too_few_frames_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--frames=1"):
        moving_shapes.MovingShapesConfig(frames=1)
