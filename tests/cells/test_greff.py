"""Greff et al.'s vanilla LSTM and its eight variants against a NumPy transcription."""

import numpy as np
import pytest

from tests.cells.reference import assert_matches_reference, sigmoid
from zoo import cells

VARIANTS = ["vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr"]


def numpy_greff(variant, units):
    """Equations of Greff et al. 2015 (Section 2), with the variant's change applied."""
    gates = [
        g for g in "ifco" if not {"nig": "i", "nfg": "f", "cifg": "f", "nog": "o"}.get(variant) == g
    ]
    peepholes = variant != "np"
    g_act = (lambda a: a) if variant == "niaf" else np.tanh
    h_act = (lambda a: a) if variant == "noaf" else np.tanh

    def step(w, x, states):
        y, c = states[0], states[1]
        W = dict(zip(gates, np.split(w["kernel"], len(gates), axis=-1)))
        R = dict(zip(gates, np.split(w["recurrent_kernel"], len(gates), axis=-1)))
        b = dict(zip(gates, np.split(w["bias"], len(gates), axis=-1)))
        bar = {g: x @ W[g] + y @ R[g] + b[g] for g in gates}
        if variant == "fgr":
            R_gates = w["gate_recurrent_kernel"]  # rows: i, f, o of t-1; columns: i, f, o of t
            previous = states[2]
            for column, g in enumerate("ifo"):
                bar[g] = bar[g] + previous @ R_gates[:, column * units : (column + 1) * units]

        def p(g):
            return w[f"peephole_{g}"] if peepholes else 0.0

        z = g_act(bar["c"])
        i = sigmoid(bar["i"] + p("i") * c) if "i" in gates else 1.0
        if variant == "cifg":
            f = 1.0 - i
        else:
            f = sigmoid(bar["f"] + p("f") * c) if "f" in gates else 1.0
        c = z * i + c * f
        o = sigmoid(bar["o"] + p("o") * c) if "o" in gates else 1.0
        y = h_act(c) * o
        if variant == "fgr":
            return y, [y, c, np.concatenate([i, f, o], axis=-1)]
        return y, [y, c]

    return step


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_numpy(variant):
    assert_matches_reference(f"{variant}_lstm", numpy_greff(variant, 5), units=5)


@pytest.mark.parametrize(
    "variant, blocks, peepholes",
    [
        ("vanilla", 4, "ifo"),
        ("nig", 3, "fo"),
        ("nfg", 3, "io"),
        ("nog", 3, "if"),
        ("niaf", 4, "ifo"),
        ("noaf", 4, "ifo"),
        ("np", 4, ""),
        ("cifg", 3, "io"),
        ("fgr", 4, "ifo"),
    ],
)
def test_weight_layout(variant, blocks, peepholes):
    cell = cells.create(f"{variant}_lstm", 2)
    cell.build((None, 3))
    names = {w.name: tuple(w.shape) for w in cell.weights}
    assert names.pop("kernel") == (3, 2 * blocks)
    assert names.pop("recurrent_kernel") == (2, 2 * blocks)
    assert names.pop("bias") == (2 * blocks,)
    if variant == "fgr":
        assert names.pop("gate_recurrent_kernel") == (6, 6)
    assert names == {f"peephole_{g}": (2,) for g in peepholes}
