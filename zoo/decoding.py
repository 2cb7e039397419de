"""Decoding: sample the next token from logits, and generate sequences from a step function.

Sampling follows the usual recipe: divide the logits by a temperature (0 = greedy), keep the
`top_k` most likely tokens (Fan et al. 2018, "Hierarchical Neural Story Generation") and/or
the smallest set whose probability reaches `top_p` (Holtzman et al. 2020, "The Curious Case
of Neural Text Degeneration", nucleus sampling), then draw from the renormalised softmax.

Search (`greedy_search`, `beam_search` with GNMT's length penalty) runs a step function in one
`ops.while_loop`, batched, until every sequence has ended or a maximum length.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

_MASKED = -1e9


def check_sampling(
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> None:
    """Raise a ValueError naming the argument if a sampling setting is out of range."""
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0. Received: temperature={temperature}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise ValueError(f"`top_k` must be a positive integer. Received: top_k={top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"`top_p` must be in (0, 1]. Received: top_p={top_p}")


def draw(logits, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """NumPy: one token id per row of `logits` (batch, vocab) drawn from softmax(logits /
    temperature) with `rng`; the most likely when temperature is 0. int32 (batch,)."""
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return logits.argmax(-1).astype(np.int32)
    scaled = logits / temperature
    probs = np.exp(scaled - scaled.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(len(p), p=p) for p in probs], np.int32)


def filter_logits(logits, top_k=None, top_p=None):
    """Logits (batch, vocab) with every token outside the top-k / top-p set masked out."""
    logits = ops.convert_to_tensor(logits, "float32")
    if top_k is not None and top_k < logits.shape[-1]:
        kth = ops.top_k(logits, int(top_k))[0][:, -1:]
        logits = ops.where(logits < kth, _MASKED, logits)
    if top_p is not None and top_p < 1.0:
        ordered = ops.flip(ops.sort(logits, axis=-1), axis=-1)
        probs = ops.softmax(ordered, axis=-1)
        # A token is kept if the tokens more likely than it hold less than top_p in total.
        before = ops.cumsum(probs, axis=-1) - probs
        kept = ops.where(before < top_p, ordered, ops.full_like(ordered, float("inf")))
        threshold = ops.min(kept, axis=-1, keepdims=True)
        logits = ops.where(logits < threshold, _MASKED, logits)
    return logits


def sample_logits(
    logits,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed=None,
):
    """Next token ids (batch,) drawn from logits (batch, vocab).

    Args:
        logits: unnormalised scores, (batch, vocab).
        temperature: divides the logits; 0 picks the most likely token (greedy).
        top_k: keep only the k most likely tokens.
        top_p: keep only the smallest set of tokens whose probability reaches top_p.
        seed: an int or a `keras.random.SeedGenerator` (pass one generator through a loop).
    """
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return ops.argmax(logits, axis=-1)
    logits = filter_logits(ops.convert_to_tensor(logits, "float32") / temperature, top_k, top_p)
    return keras.random.categorical(logits, 1, seed=seed)[:, 0]


def generate(
    step: Callable,
    states,
    prompt_ids,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Feed `prompt_ids` (batch, time >= 1) through `step`, then sample `length` more tokens.

    `step(ids, states) -> (logits, states)` is one time step of a model (e.g.
    `LanguageModel.step`). Returns the generated ids, (batch, length), as a NumPy array. The
    same `seed` (an int) gives the same tokens.
    """
    check_sampling(temperature, top_k, top_p)
    if length < 0:
        raise ValueError(f"`length` must be >= 0. Received: length={length}")
    prompt_ids = ops.convert_to_tensor(prompt_ids, "int32")
    if len(prompt_ids.shape) != 2 or prompt_ids.shape[1] == 0:
        raise ValueError(
            f"`prompt_ids` must be (batch, time >= 1). Received: shape={prompt_ids.shape}"
        )
    seeds = keras.random.SeedGenerator(seed)
    for t in range(prompt_ids.shape[1]):
        logits, states = step(prompt_ids[:, t], states)
    tokens = []
    for _ in range(length):
        ids = ops.cast(sample_logits(logits, temperature, top_k, top_p, seed=seeds), "int32")
        tokens.append(ids)
        logits, states = step(ids, states)
    if not tokens:
        return ops.convert_to_numpy(ops.zeros((prompt_ids.shape[0], 0), "int32"))
    return ops.convert_to_numpy(ops.stack(tokens, axis=1))


# -- search: greedy and beam, in graph loops --------------------------------------------------
_NEG = -1e9  # log-probability of an impossible continuation


def _write(buffer, t, ids):
    """`buffer` (batch, length) with column t set to ids (batch,)."""
    column = ops.arange(ops.shape(buffer)[1])[None, :] == t
    return ops.where(column, ids[:, None], buffer)


def _log_probs(step, ids, state, pad_id):
    """Log-probabilities of the next token (padding never generated) and the new state."""
    logits, state = step(ids, state)
    logits = ops.cast(logits, "float32")
    logits = ops.where(ops.arange(ops.shape(logits)[-1]) == pad_id, _NEG, logits)
    return ops.log_softmax(logits, axis=-1), state


def greedy_search(
    step: Callable, state, start_ids, end_id: int, max_length: int, pad_id: int = 0
) -> tuple:
    """The most likely token at every step, until `end_id` or `max_length` tokens.

    `step(ids, state) -> (logits, state)` is one decoder step over a batch; `state` is any
    nest of tensors with the batch first. Runs as an `ops.while_loop` (one graph loop under
    `tf.function`). Returns (ids, scores): (batch, max_length) ids, `pad_id` after `end_id`,
    and their summed log-probabilities (batch,).
    """
    batch = ops.shape(start_ids)[0]

    def body(t, ids, state, buffer, scores, finished):
        log_probs, state = _log_probs(step, ids, state, pad_id)
        ids = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
        best = ops.max(log_probs, axis=-1)
        ids = ops.where(finished, pad_id, ids)
        scores = scores + ops.where(finished, 0.0, best)
        finished = ops.logical_or(finished, ops.equal(ids, end_id))
        return t + 1, ids, state, _write(buffer, t, ids), scores, finished

    def cond(t, ids, state, buffer, scores, finished):
        return ops.logical_not(ops.all(finished))

    loop = (
        0,
        ops.cast(start_ids, "int32"),
        state,
        ops.zeros((batch, max_length), "int32"),
        ops.zeros((batch,), "float32"),
        ops.zeros((batch,), "bool"),
    )
    _, _, _, buffer, scores, _ = ops.while_loop(cond, body, loop, maximum_iterations=max_length)
    return buffer, scores


def length_penalty_factor(length, alpha: float):
    """GNMT's length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016); 1 when alpha = 0."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def beam_search(
    step, state, start_ids, end_id, max_length, beam_size=4, length_penalty=0.6, pad_id=0
):
    """Beam search with a length penalty, batched, in one graph loop.

    Keeps the `beam_size` best hypotheses per sentence, ranked by log-probability divided by
    `length_penalty_factor(length, length_penalty)`; a finished hypothesis stays in the beam
    with its score. `step` and `state` as in `greedy_search` (the state is repeated for every
    beam and reordered as beams are chosen). With `beam_size=1` it equals `greedy_search`.

    Returns (ids, scores): the best hypothesis per sentence, (batch, max_length) ids padded
    with `pad_id` after `end_id`, and its normalised score (batch,).

    Reference: Y. Wu et al., "Google's Neural Machine Translation System", 2016.
    """
    k = beam_size
    batch = ops.shape(start_ids)[0]
    state = keras.tree.map_structure(lambda s: ops.repeat(s, k, axis=0), state)
    first = ops.cast(ops.arange(k) == 0, "float32")
    scores = ops.tile((1.0 - first)[None, :] * _NEG, (batch, 1))  # only beam 0 is live at first
    offsets = ops.arange(batch)[:, None] * k

    def body(t, ids, state, buffer, scores, lengths, finished):
        log_probs, state = _log_probs(step, ids, state, pad_id)
        vocab = ops.shape(log_probs)[-1]
        log_probs = ops.reshape(log_probs, (batch, k, vocab))
        # A finished hypothesis may only continue with padding, at no cost.
        pad_only = ops.where(ops.arange(vocab) == pad_id, 0.0, _NEG)
        log_probs = ops.where(finished[:, :, None], pad_only, log_probs)
        totals = ops.reshape(scores[:, :, None] + log_probs, (batch, -1))
        new_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
        factor = ops.repeat(length_penalty_factor(new_lengths, length_penalty), vocab, axis=1)
        _, chosen = ops.top_k(totals / factor, k)  # (batch, k) indices into k * vocab
        beams, ids = chosen // vocab, ops.cast(chosen % vocab, "int32")
        rows = ops.reshape(offsets + beams, (-1,))
        state = keras.tree.map_structure(lambda s: ops.take(s, rows, axis=0), state)
        buffer = _write(ops.take(buffer, rows, axis=0), t, ops.reshape(ids, (-1,)))
        scores = ops.take_along_axis(totals, chosen, axis=1)
        lengths = ops.take_along_axis(new_lengths, beams, axis=1)
        finished = ops.logical_or(
            ops.take_along_axis(finished, beams, axis=1), ops.equal(ids, end_id)
        )
        return t + 1, ops.reshape(ids, (-1,)), state, buffer, scores, lengths, finished

    def cond(t, ids, state, buffer, scores, lengths, finished):
        return ops.logical_not(ops.all(finished))

    loop = (
        0,
        ops.repeat(ops.cast(start_ids, "int32"), k),
        state,
        ops.zeros((batch * k, max_length), "int32"),
        scores,
        ops.zeros((batch, k), "int32"),
        ops.zeros((batch, k), "bool"),
    )
    _, _, _, buffer, scores, lengths, _ = ops.while_loop(
        cond, body, loop, maximum_iterations=max_length
    )
    normalised = scores / length_penalty_factor(lengths, length_penalty)
    best = ops.argmax(normalised, axis=1)
    rows = ops.reshape(ops.arange(batch) * k + ops.cast(best, "int32"), (-1,))
    return ops.take(buffer, rows, axis=0), ops.take_along_axis(normalised, best[:, None], 1)[:, 0]
