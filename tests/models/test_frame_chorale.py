"""Frame-level chorales: one recurrent step per SATB frame, an autoregressive head within it."""

import json

import numpy as np
import pytest

from pipelines import cli
from pipelines.music import voice_leading
from pipelines.music.harmony import harmonize
from pipelines.music.harmony_frames import as_frames, frame_batches
from tests.cells.test_lstm import numpy_lstm
from zoo import testing
from zoo.models import frame_chorale
from zoo.models.harmony import SATBVocabulary, SerialNLLPerStep, nll_per_step

CHORDS = [[72, 67, 64, 48], [74, 67, 65, 47], [76, 0, 60, 48], [77, 69, 62, 41]]


def two_chorales():
    """Frames (1, 8, 5) of two short chorales back to back (the second's SEP frame inside)."""
    vocabulary = SATBVocabulary()
    first = np.concatenate([[vocabulary.SEP], vocabulary.encode(CHORDS, [0, 0, 1, 0])])
    second = np.concatenate([[vocabulary.SEP], vocabulary.encode(CHORDS[::-1][:3])])
    return np.concatenate([as_frames(first), as_frames(second)])[None]


def tiny_model(seed=0, cell="lstm", head_units=4):
    model = frame_chorale.frame_model(
        "tiny", cell=cell, units=6, embedding_dim=3, head_units=head_units
    )
    model(two_chorales())
    testing.randomize_weights(model, seed=seed)
    return model


def numpy_frame_logits(model, frames):
    """The model's logits (batch, T, 5, vocab) computed in NumPy from its weights."""
    w = {v.path.split("/", 1)[1]: v.numpy().astype("float64") for v in model.weights}
    table = w["embedding/embeddings"]
    inputs, targets = frames[:, :-1], frames[:, 1:]
    x = table[inputs].reshape(*inputs.shape[:2], -1)
    cell = {k.split("/")[-1]: v for k, v in w.items() if k.startswith("recurrent_0")}
    states = [np.zeros((len(frames), model.units))] * 2
    contexts = []
    for t in range(x.shape[1]):
        h, states = numpy_lstm(cell, x[:, t], states)
        contexts.append(h)
    h = np.stack(contexts, 1)
    vocabulary, logits = model.vocabulary, []
    for k in range(5):
        features = np.concatenate([h, table[targets[..., :k]].reshape(*h.shape[:2], -1)], -1)
        if model.head_units:  # a tanh layer, then the logits
            features = np.tanh(features @ w[f"hidden_{k}/kernel"] + w[f"hidden_{k}/bias"])
        small = features @ w[f"token_{k}/kernel"] + w[f"token_{k}/bias"]
        first, count = frame_chorale.position_tokens(vocabulary, k)
        full = np.full((*h.shape[:2], vocabulary.size), -1e9)
        full[..., first : first + count] = small
        logits.append(full)
    return np.stack(logits, -2)


@pytest.mark.parametrize("head_units", [0, 4])
def test_nll_matches_numpy_computation_token_by_token(head_units):
    model, frames = tiny_model(head_units=head_units), two_chorales()
    expected_logits = numpy_frame_logits(model, frames)
    logits = np.asarray(model(frames))
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)
    # NLL per frame by hand: each position's softmax over the tokens it admits, SEP unscored
    vocabulary, targets, total = model.vocabulary, frames[0, 1:], 0.0
    for t, frame in enumerate(targets):
        for k, token in enumerate(frame):
            if token > vocabulary.SEP:
                first, count = frame_chorale.position_tokens(vocabulary, k)
                row = expected_logits[0, t, k, first : first + count]
                total -= row[token - first] - np.logaddexp.reduce(row)
    expected = total / 7  # seven frames scored (the SEP frame's marker only is a target)
    assert np.isclose(nll_per_step(targets[None], logits, vocabulary), expected, rtol=1e-5)
    metric = SerialNLLPerStep()
    metric.update_state(targets[None], logits)
    assert np.isclose(float(metric.result()), expected, rtol=1e-5)


@pytest.mark.parametrize("head_units", [0, 4])
def test_logits_of_a_token_read_only_the_tokens_before_it(head_units):
    model, frames = tiny_model(1, head_units=head_units), two_chorales()
    contexts, targets = model.contexts(frames[:, :-1]), frames[:, 1:]
    vocabulary, logits = model.vocabulary, np.asarray(model.head(contexts, targets))
    for k in range(5):
        changed = targets.copy()
        for later in range(k, 5):  # another admitted token at every position >= k
            first, count = frame_chorale.position_tokens(vocabulary, later)
            changed[..., later] = first + (changed[..., later] - first + 1) % count
        moved = np.asarray(model.head(contexts, changed))
        np.testing.assert_array_equal(moved[:, :, : k + 1], logits[:, :, : k + 1])
        if k < 4:  # a token before position 4 does move the later ones
            assert not np.allclose(moved[:, :, 4], logits[:, :, 4])


@pytest.mark.parametrize("cell", ["lstm", "gru", "layer_norm_lstm"])
def test_step_and_prefill_give_the_recurrence_of_call(cell):
    model, frames = tiny_model(2, cell), two_chorales()
    contexts = np.asarray(model.contexts(frames))
    prefilled, _ = model.prefill(frames, model.initial_state(1))
    np.testing.assert_allclose(prefilled, contexts, rtol=1e-5, atol=1e-6)
    states = model.initial_state(1)
    for t in range(frames.shape[1]):
        context, states = model.step(frames[:, t], states)
        np.testing.assert_allclose(context, contexts[:, t], rtol=1e-5, atol=1e-6)
    logits = [model.token_logits(contexts[:, :-1], frames[:, 1:], k) for k in range(5)]
    np.testing.assert_allclose(np.stack(logits, 2), model(frames), rtol=1e-6)


def test_evaluation_batches_score_whole_chorales_from_their_sep_frame():
    vocabulary = SATBVocabulary()
    sequences = [np.concatenate([[vocabulary.SEP], vocabulary.encode(CHORDS[:n])]) for n in (2, 4)]
    inputs, targets = (np.asarray(t) for t in next(iter(frame_batches(sequences, 2))))
    assert inputs.shape == (2, 5, 5) and targets.shape == (2, 4, 5)
    np.testing.assert_array_equal(inputs[0, 0], frame_chorale.frame_of_separator())
    np.testing.assert_array_equal(targets[0, 2:], 0)  # padding, never scored
    np.testing.assert_array_equal(targets[1].reshape(-1), vocabulary.encode(CHORDS))


def test_harmonising_keeps_the_soprano_and_draws_whole_chords_under_the_rules():
    model = tiny_model(4)  # built on (batch, time) frames, then drawn from frame by frame
    melody = np.repeat([72, 74, 76, 0, 77, 76, 74, 72], 4)
    grid = harmonize(model, melody, seed=3)
    np.testing.assert_array_equal(grid[:, 0], melody)
    assert ((grid[:, 1:] == 0) | (grid[:, 1:] >= model.vocabulary.lowest)).all()
    ruled = [harmonize(model, melody, seed=s, rules=True) for s in range(3)]
    assert all((g[:, 0] == melody).all() for g in ruled)
    kept = voice_leading.statistics(ruled)
    assert kept["fifths"] == kept["octaves"] == kept["crossed"] == kept["outside"] == 0


@pytest.mark.slow
def test_cli_trains_and_evaluates_the_frame_head(tmp_path, capsys):
    run_dir = tmp_path / "run"
    command = ["--units=16", "--layers=1", "--embedding_dim=8", "--seq_len=16"]
    assert (
        cli.run(
            ["train", "--task=harmony", "--head=frame", *command, "--epochs=1", "--steps=2"]
            + ["--batch_size=4", f"--run_dir={run_dir}"]
        )
        == 0
    )
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    # Near the uniform chord: log 3 markers + 4 log 47 pitches, and never above it by much.
    assert 14.0 < test["nll"] < 17.0
    capsys.readouterr()
    assert cli.run(["evaluate", f"--run_dir={run_dir}"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert np.isclose(evaluated["nll"], test["nll"], rtol=1e-5)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["head"] == "frame"
    assert cli.run(["export", f"--run_dir={run_dir}"]) != 0  # refused in one line
    assert "--head=frame model does not export" in capsys.readouterr().err
    assert not (run_dir / "export").exists()
