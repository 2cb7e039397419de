import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from pipelines import cli, optimizers, train


def run(config, **changes):
    return train.train(dataclasses.replace(config, **changes), verbose=0)


def weights(path):
    return [np.asarray(w) for w in keras.models.load_model(path).get_weights()]


def test_training_lowers_the_loss_and_writes_the_run_directory(tiny, tmp_path):
    _, metrics = run(tiny)
    history = metrics["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["loss"] < history[0]["loss"] < math.log(30)
    run_dir = tmp_path / "run"
    for name in ("config.json", "vocab.json", "last.keras", "best.keras", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "logs").rglob("events.out.tfevents*"))
    assert not list(run_dir.glob(".tmp-*"))
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test"]["bits_per_char"] == pytest.approx(saved["test"]["loss"] / math.log(2))
    assert saved["best"]["val_bits_per_char"] > 0
    assert train.load_config(run_dir) == dataclasses.replace(tiny, run_dir=str(run_dir))

    evaluated = train.evaluate(run_dir)
    assert evaluated["loss"] == pytest.approx(saved["test"]["loss"], rel=1e-5)
    assert train.evaluate(run_dir, data=tiny.data)["bits_per_char"] > 0

    def sample(seed):
        return train.sample(run_dir, prompt="To be", length=30, seed=seed, top_k=5)

    first = sample(1)
    assert first.startswith("To be") and len(first) == 35
    assert sample(1) == first
    assert sample(2) != first

    with pytest.raises(FileExistsError, match="already holds a run"):
        run(tiny)


@pytest.mark.parametrize(
    "changes", [{}, {"optimizer": "muon", "cell": "gru", "weight_decay": 0.1}], ids=["adam", "muon"]
)
def test_resume_continues_exactly_like_an_uninterrupted_run(tiny, tmp_path, changes):
    config = dataclasses.replace(tiny, epochs=2, steps=5, validation_steps=1, **changes)
    run(config, run_dir=str(tmp_path / "straight"))
    run(config, run_dir=str(tmp_path / "resumed"), epochs=1)
    _, metrics = run(config, run_dir=str(tmp_path / "resumed"), resume=True)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    for a, b in zip(
        weights(tmp_path / "straight/last.keras"), weights(tmp_path / "resumed/last.keras")
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        run(config, run_dir=str(tmp_path / "nothing"), resume=True)
    assert not (tmp_path / "nothing").exists()


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    config = dataclasses.replace(tiny, epochs=1, steps=3, validation_steps=1)
    run(config)
    before = weights(tmp_path / "run/last.keras")
    task = train.get_task("text")
    nan_loss = lambda y, logits: keras.ops.mean(logits) * float("nan")  # noqa: E731
    monkeypatch.setattr(type(task), "loss", lambda self, config: nan_loss)
    with pytest.raises(FloatingPointError, match="diverged at epoch 2"):
        run(config, epochs=2, resume=True)
    for a, b in zip(before, weights(tmp_path / "run/last.keras")):
        np.testing.assert_array_equal(a, b)


def test_unknown_task_and_strategy():
    with pytest.raises(KeyError, match="Known tasks: .*text"):
        train.get_task("poetry")
    with pytest.raises(ValueError, match="strategy='tpu_pod'"):
        train.make_strategy("tpu_pod")


def test_command_line(tiny, tmp_path, capsys):
    assert cli.run(["list"]) == 0
    listing = capsys.readouterr().out
    assert "cifg_lstm" in listing and "text" in listing and "tiny" in listing
    assert (
        cli.run(
            [
                "train",
                f"--data={tiny.data}",
                f"--run_dir={tmp_path / 'cli'}",
                "--size=tiny",
                "--cell=gru",
                "--seq_len=16",
                "--batch_size=8",
                "--epochs=1",
                "--steps=3",
                "--validation_steps=1",
                "--mixed_precision",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert json.loads(out)["best"]["val_bits_per_char"] > 0
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"Run {tmp_path / 'cli'}: gru, ") and "parameters" in summary
    assert "best validation bits_per_char" in summary and "test bits_per_char" in summary
    assert "stream_bits_per_char" in summary
    assert train.load_config(tmp_path / "cli").cell == "gru"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    model = train.load_checkpoint(tmp_path / "cli")
    assert model.recurrent[0].cell.compute_dtype == "bfloat16"
    assert (
        cli.run(
            ["sample", f"--run_dir={tmp_path / 'cli'}", "--length=12", "--seed=4", "--prompt=Or"]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("Or")
    assert cli.run(["evaluate", f"--run_dir={tmp_path / 'cli'}"]) == 0
    assert "bits_per_char" in json.loads(capsys.readouterr().out)
    assert cli.run(["sample", f"--run_dir={tmp_path / 'cli'}", "--units=3"]) == 2
    assert "Unknown command line flag 'units'" in capsys.readouterr().err
    assert cli.run(["evaluate"]) == 2
    assert "needs --run_dir" in capsys.readouterr().err
    assert cli.run(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


def test_cosine_schedule_warms_up_and_decays_and_weight_decay_means_adamw():
    from pipelines.text import TextConfig

    config = TextConfig(learning_rate=1e-2, schedule="cosine", warmup_steps=10)
    schedule = optimizers.learning_rate(config, 110)
    assert float(schedule(0)) == 0.0 and float(schedule(10)) == pytest.approx(1e-2)
    assert float(schedule(60)) == pytest.approx(1e-2 * (0.01 + 0.99 * 0.5), rel=1e-3)
    assert float(schedule(110)) == pytest.approx(1e-4, rel=1e-3)
    constant = optimizers.make_optimizer(dataclasses.replace(config, schedule="constant"), 110)
    assert float(constant.learning_rate) == pytest.approx(1e-2)
    assert type(constant).__name__ == "Adam" and constant.beta_2 == pytest.approx(0.999)
    adamw = optimizers.make_optimizer(
        dataclasses.replace(config, weight_decay=0.1, adam_beta2=0.99), 110
    )
    assert type(adamw).__name__ == "AdamW" and adamw.weight_decay == pytest.approx(0.1)
    assert adamw.beta_2 == pytest.approx(0.99)
    with pytest.raises(ValueError, match="--adam_beta2=1.0: must be between 0.0 and 0.999999"):
        TextConfig(adam_beta2=1.0)
    with pytest.raises(ValueError, match="--schedule=linear: expected one of constant, cosine"):
        TextConfig(schedule="linear")


def test_muon_steps_the_hidden_matrices_and_adamw_the_rest(tiny):
    from zoo.models.language_model import from_size

    model = from_size("tiny", 12, cell="gru")
    optimizer = optimizers.make_optimizer(
        dataclasses.replace(tiny, optimizer="muon", weight_decay=0.1), 100
    )
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    tokens = np.random.default_rng(0).integers(0, 12, (4, 9))
    first = model.train_on_batch(tokens, tokens)
    adamw = {
        (v.path.split("/")[1], v.name): optimizer._should_use_adamw(v)
        for v in model.trainable_variables
    }
    assert adamw == {
        ("embedding", "embeddings"): True,
        ("recurrent_0", "kernel"): False,
        ("recurrent_0", "recurrent_kernel"): False,
        ("recurrent_0", "bias"): True,
        ("logits", "kernel"): True,
        ("logits", "bias"): True,
    }
    for _ in range(5):
        last = model.train_on_batch(tokens, tokens)
    assert last < first
    with pytest.raises(ValueError, match="--optimizer=sgd: expected one of adam, muon"):
        dataclasses.replace(tiny, optimizer="sgd")


def test_patience_stops_after_epochs_without_a_better_validation_loss(tmp_path):
    from pipelines.callbacks import RunCheckpoint

    def history(*losses):
        return [{"epoch": i + 1, "loss": 1.0, "val_loss": v} for i, v in enumerate(losses)]

    def exhausted(losses, patience):
        return RunCheckpoint(str(tmp_path), dict, history(*losses), patience).exhausted

    assert not exhausted([3, 2, 2.5], 2)
    assert exhausted([3, 2, 2.5, 2.1], 2)
    assert not exhausted([3, 2, 2.5, 2.1, 1.9], 2)
    assert not exhausted([3, 2, 2.5, 2.1], None)
    assert not exhausted([], 2)


def test_a_setting_keeps_its_range_where_a_task_changes_its_default():
    from pipelines.configs import setting_range
    from pipelines.moving_shapes import MovingShapesConfig

    assert setting_range(MovingShapesConfig, "epochs") == (1, 100_000)  # declared by TrainConfig
    assert setting_range(MovingShapesConfig, "filters") == (1, 1 << 14)  # its own setting
    with pytest.raises(ValueError, match=r"^--epochs=0: must be between 1 and 100000$"):
        MovingShapesConfig(epochs=0)
    with pytest.raises(ValueError, match=r"^--learning_rate=inf: must be a finite number$"):
        MovingShapesConfig(learning_rate=float("inf"))
