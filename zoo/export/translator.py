"""The translator's .tflite file in LiteRT: on-device greedy decoding, and its parity and
quality against the Keras `Seq2Seq` it came from.

    translator = TFLiteTranslator("exports/translator/model.tflite")
    ids = translator.greedy(source_ids, start_id=2, end_id=3)
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from zoo.export.parity import ParityError, log_probabilities
from zoo.export.runtime import latency
from zoo.export.seq2seq_module import decode, pad_source


class TFLiteTranslator:
    """The `encode` and `decode_step` signatures of a .tflite file, in LiteRT (NumPy only).

    Example:
        translator = TFLiteTranslator("model.tflite")
        ids = translator.greedy(source_ids, start_id=2, end_id=3)
    """

    def __init__(self, model, num_threads=2):
        if isinstance(model, (str, os.PathLike)):
            if not os.path.isfile(model):
                raise FileNotFoundError(f"No .tflite file at model={str(model)!r}")
            interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
        else:
            interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        missing = {"encode", "decode_step"} - set(interpreter.get_signature_list())
        if missing:
            raise ValueError(f"The model lacks the signature(s) {sorted(missing)} of a "
                             "translator export")
        self.encode_runner = interpreter.get_signature_runner("encode")
        self.step_runner = interpreter.get_signature_runner("decode_step")
        self.max_source_len = int(self.encode_runner.get_input_details()["source"]["shape"][1])

    def encode(self, source_ids):
        """`encode` of one sentence's ids (unpadded): memory, keys, source_mask and states."""
        return self.encode_runner(source=pad_source(source_ids, self.max_source_len))

    def step(self, token, encoded):
        """`decode_step` from `encode`'s (or the last step's) outputs: logits, attention and
        new states; returns the outputs and the dict for the next step."""
        outputs = self.step_runner(ids=np.array([token], np.int32), **encoded)
        states = {name: outputs[name] for name in encoded if name.startswith("state_")}
        return outputs, {**encoded, **states}

    def greedy(self, source_ids, start_id, end_id, max_length=100, pad_id=0, on_step=None):
        """Greedy translation: the ids after `start_id` up to and including `end_id`.
        `on_step(token, outputs)`, if given, sees every step's input token and outputs."""
        encoded, token, ids = self.encode(source_ids), start_id, []
        while len(ids) < max_length and token != end_id:
            outputs, encoded = self.step(token, encoded)
            if on_step is not None:
                on_step(token, outputs)
            token = next_token(outputs["logits"], pad_id)
            ids.append(token)
        return ids


def next_token(logits, pad_id=0):
    """The most likely token other than padding, as `zoo.decoding.greedy_search` picks it."""
    logits = np.array(logits, np.float64).reshape(-1)
    logits[pad_id] = -np.inf
    return int(np.argmax(logits))


def _max_diff(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def parity(model, flatbuffer, sources, start_id, end_id, max_length=100, targets=None,
           bleu=None):
    """Compare a translator .tflite file with `model` on sentences (lists of source ids).

    Each sentence is encoded by both (memory, keys and states compared at its real
    positions), then decoded greedily by the file, with Keras's `decode` fed the same tokens
    (logits, states and attention compared at every step); the file's greedy ids are compared
    with `model.generate(..., beam_size=1)`. Returns max_abs_diff per signature and the share
    of sentences whose greedy translations are equal token for token.

    With `targets` (each sentence's reference ids, ending with `end_id`), the report's
    `score` is the bits per target token of Keras and of the file, teacher-forced along the
    references (the file's `decode_step` fed the reference tokens): what `quality_loss`
    gates. With `bleu` (a function of greedy translations, lists of ids, to a corpus BLEU),
    it also holds the BLEU of both greedy translations.
    """
    if not sources:
        raise ValueError("Parity needs at least one source sentence. Received: sources=[]")
    if targets is not None and len(targets) != len(sources):
        raise ValueError(f"Parity got {len(targets)} targets for {len(sources)} sources")
    translator = TFLiteTranslator(flatbuffer)
    diffs = {"encode": 0.0, "decode_step": 0.0}
    translations = [_sentence_parity(model, translator, source, start_id, end_id, max_length,
                                     diffs) for source in sources]
    report = {"max_abs_diff": diffs, "sentences": len(sources),
              "greedy_equal": sum(ids == expected for ids, expected in translations)
              / len(sources)}
    if targets is not None:
        bits = np.array([_teacher_forced_bits(model, translator, source, target, start_id)
                         for source, target in zip(sources, targets)])
        tokens = sum(len(target) for target in targets)
        report["score"] = {"metric": "bits_per_token", "keras": bits[:, 0].sum() / tokens,
                           "tflite": bits[:, 1].sum() / tokens}
        report["bits_per_token"] = {k: report["score"][k] for k in ("keras", "tflite")}
    if bleu is not None:
        report["bleu_greedy"] = {"keras": float(bleu([e for _, e in translations])),
                                 "tflite": float(bleu([ids for ids, _ in translations]))}
    return report


def _sentence_parity(model, translator, source, start_id, end_id, max_length, diffs):
    """`parity` of one sentence: updates `diffs`; the file's and Keras's greedy ids."""
    n, source = len(source), np.asarray(source, np.int32)
    encoded = model.encode(source[None])
    exported = translator.encode(source)
    diffs["encode"] = max(
        diffs["encode"],
        _max_diff(exported["memory"][:, :n], encoded["memory"]),
        _max_diff(exported["keys"][:, :n], encoded["keys"]),
        *(_max_diff(exported[name], s) for name, s in
          zip(_state_keys(exported), tf.nest.flatten(encoded["states"]))),
    )

    def compare(token, outputs):
        nonlocal encoded
        logits, states, weights = decode(model, np.array([token], np.int32), encoded)
        encoded = {**encoded, "states": states}
        diffs["decode_step"] = max(
            diffs["decode_step"], _max_diff(outputs["logits"], logits),
            _max_diff(outputs["attention"][:, :n], weights),
            *(_max_diff(outputs[name], s) for name, s in
              zip(_state_keys(outputs), tf.nest.flatten(states))),
        )

    ids = translator.greedy(source, start_id, end_id, max_length, on_step=compare)
    expected, _ = model.generate(source[None], start_id, end_id, max_length=max_length)
    return ids, [int(t) for t in expected[0] if t != 0]


def _teacher_forced_bits(model, translator, source, target, start_id):
    """-log2 p(target) summed over its tokens, in Keras and in the file, each fed the
    reference prefix (the start token, then the target but its last token)."""
    target = np.asarray(target, np.int32)
    target_in = np.concatenate([[start_id], target[:-1]]).astype(np.int32)
    logits = np.asarray(model((np.asarray(source, np.int32)[None], target_in[None])))[0]
    encoded, steps = translator.encode(source), []
    for token in target_in:
        outputs, encoded = translator.step(int(token), encoded)
        steps.append(outputs["logits"][0])

    def bits(outputs):
        picked = np.take_along_axis(log_probabilities(outputs), target[:, None], -1)
        return float(-picked.sum() / np.log(2))

    return bits(logits), bits(np.stack(steps))


def _state_keys(outputs):
    """State names in layer, index order (state_1_0 before state_10_0)."""
    names = [name for name in outputs if name.startswith("state_")]
    return sorted(names, key=lambda name: tuple(int(i) for i in name.split("_")[1:]))


def check_parity(report, tolerance, name):
    """Raise `ParityError` if a signature of `report` exceeds `tolerance` or a greedy
    translation differs from Keras's."""
    worst = max(report["max_abs_diff"].items(), key=lambda item: item[1])
    if worst[1] > tolerance:
        raise ParityError(f"{name}: the {worst[0]!r} signature differs from Keras by "
                          f"{worst[1]:.3g} (max abs), more than the tolerance {tolerance:g}")
    if report["greedy_equal"] < 1.0:
        raise ParityError(f"{name}: greedy translations differ from Seq2Seq.generate on "
                          f"{1 - report['greedy_equal']:.0%} of the sentences")


def bench_translator(path, steps=200, warmup=20, num_threads=2, source_length=None) -> dict:
    """Latency of a translator file in LiteRT, in microseconds: `encode` of one sentence of
    `source_length` tokens (default the file's max_source_len: the encoder is unrolled over
    all of them whatever the length), and `decode_step` with its states fed back."""
    translator = TFLiteTranslator(path, num_threads)
    source = np.full(source_length or translator.max_source_len, 4, np.int32)
    encoded = translator.encode(source)

    def step():
        nonlocal encoded
        encoded = translator.step(4, encoded)[1]

    return {"encode": latency(lambda: translator.encode(source), max(1, steps // 10),
                              max(1, warmup // 10)),
            "decode_step": latency(step, steps, warmup),
            "num_threads": num_threads, "bytes": os.path.getsize(path)}


__all__ = ["TFLiteTranslator", "bench_translator", "check_parity", "next_token", "parity"]
