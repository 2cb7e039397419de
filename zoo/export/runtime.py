"""Running exported .tflite files in the LiteRT interpreter: streaming, sampling, translating,
classifying, latency.

Only NumPy and `ai_edge_litert` are used here, as on a device: no TensorFlow, no Keras.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from zoo.decoding import draw


class TFLiteStepper:
    """A signature of a .tflite file (`step` by default) with its states carried between calls.

    `prefill(tokens)` reads a prompt through the file's `predict` signature, a window of T
    tokens per call, and the last len % T tokens through `step`; the states carry on into the
    next call. (Fewer calls, not less time, on a CPU: `predict` costs more per token there.)

    Example:
        stepper = TFLiteStepper("model.tflite")
        stepper.prefill(prompt[:-1])                     # (1, len - 1, vocab)
        logits = stepper(np.array([prompt[-1]], np.int32))   # (1, vocab); states advance
        stepper.reset()
    """

    def __init__(self, model, num_threads=2, signature="step"):
        if isinstance(model, (str, os.PathLike)):
            if not os.path.isfile(model):
                raise FileNotFoundError(f"No .tflite file at model={str(model)!r}")
            self.interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
        else:
            self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        self.signatures = signatures = self.interpreter.get_signature_list()
        if signature not in signatures:
            raise ValueError(
                f"The model has no {signature!r} signature. Received: signatures="
                f"{sorted(signatures)}"
            )
        self.runner = self.interpreter.get_signature_runner(signature)
        self.inputs = self.runner.get_input_details()
        self.state_names = sorted(name for name in self.inputs if name != "x")
        self.reset()

    def reset(self):
        """Zero every state tensor."""
        self.states = {
            name: np.zeros(self.inputs[name]["shape"], self.inputs[name]["dtype"])
            for name in self.state_names
        }

    def __call__(self, x):
        return self._run(self.runner, np.asarray(x, self.inputs["x"]["dtype"]))["output"]

    def _run(self, runner, x):
        outputs = runner(x=x, **self.states)
        # (a bidirectional model's `predict` returns no states: it always starts from zeros)
        self.states = {name: outputs.get(name, self.states[name]) for name in self.state_names}
        return outputs

    def prefill(self, tokens):
        """Outputs (B, len, ...) for `tokens` (B, len) or (len,) read from the current states,
        which then hold the states after the last token (None for no tokens)."""
        if not {"step", "predict"} <= set(self.signatures):
            raise ValueError(
                "prefill needs a streaming model (`step` and `predict` "
                f"signatures). Received: signatures={sorted(self.signatures)}"
            )
        tokens = np.asarray(tokens, self.inputs["x"]["dtype"])
        tokens = tokens[None] if tokens.ndim == 1 else tokens
        predict = self.interpreter.get_signature_runner("predict")
        window = predict.get_input_details()["x"]["shape"][1]
        whole = tokens.shape[1] - tokens.shape[1] % window
        outputs = [
            self._run(predict, tokens[:, start : start + window])["output"]
            for start in range(0, whole, window)
        ]
        if whole < tokens.shape[1]:
            step = self.interpreter.get_signature_runner("step")
            outputs += [
                self._run(step, tokens[:, t])["output"][:, None]
                for t in range(whole, tokens.shape[1])
            ]
        return np.concatenate(outputs, axis=1) if outputs else None


class TFLiteStepModel:
    """The `step` signature of a .tflite file behind the step protocol of
    `zoo.models.protocol` (NumPy in and out), so code written for a Keras step model runs the
    file unchanged: `zoo.models.harmony.fill_chorale`, `pipelines.music.harmony.harmonize`.

        states = model.initial_state(1)              # zeros, one group per layer
        logits, states = model.step(x_t, states)     # x_t (1,) ids or (1, features)

    `metadata` is what the export wrote into the file (`zoo.export.read_metadata`): the task,
    its settings, a vocabulary. The file's batch size is fixed at export (1 by default).

    Example:
        model = TFLiteStepModel("harmony_lstm-export/model.tflite")
        grid = pipelines.music.harmony.harmonize(model, melody, temperature=0)
    """

    def __init__(self, model, num_threads=2):
        from zoo.export.metadata import JSON_ENTRY, read_metadata

        self.stepper = TFLiteStepper(model, num_threads, signature="step")
        inputs = self.stepper.inputs
        self.batch_size = int(inputs["x"]["shape"][0])
        self.step_input = (np.dtype(inputs["x"]["dtype"]).name, tuple(inputs["x"]["shape"][1:]))
        # state_<group>_<index>, in group then index order
        names = sorted(self.stepper.state_names, key=lambda n: tuple(map(int, n.split("_")[1:])))
        self.groups = [
            [n for n in names if n.split("_")[1] == group]
            for group in dict.fromkeys(n.split("_")[1] for n in names)
        ]
        source = model if isinstance(model, (str, os.PathLike)) else bytes(model)
        entry = read_metadata(source).get(JSON_ENTRY)
        self.metadata = json.loads(entry).get("metadata", {}) if entry else {}

    def initial_state(self, batch_size):
        """Zero states, a list of groups of arrays; ValueError for another batch size than
        the file's."""
        if batch_size != self.batch_size:
            raise ValueError(
                f"The file steps a batch of {self.batch_size}. Received: batch_size={batch_size}"
            )
        inputs = self.stepper.inputs
        return [
            [np.zeros(inputs[n]["shape"], inputs[n]["dtype"]) for n in group]
            for group in self.groups
        ]

    def step(self, x, states):
        """One call of the file's `step`: (output, new states), states as `initial_state`."""
        flat = {
            n: np.asarray(s)
            for group, values in zip(self.groups, states)
            for n, s in zip(group, values)
        }
        x = np.asarray(x, self.stepper.inputs["x"]["dtype"])
        outputs = self.stepper.runner(x=x, **flat)
        return outputs["output"], [[outputs[n] for n in group] for group in self.groups]


def sample_next(logits, rng: np.random.Generator, temperature: float = 1.0) -> int:
    """A token id drawn from softmax(logits / temperature); greedy when temperature is 0."""
    return int(draw(np.reshape(logits, (1, -1)), temperature, rng)[0])


def generate(
    step: Callable, prompt: Sequence[int], length: int, temperature: float = 1.0, seed: int = 0
) -> list[int]:
    """Token ids continuing `prompt` for `length` tokens, one `step(x_t) -> logits` at a time.

    `step` is a `TFLiteStepper` or any callable with the same contract (batch 1), so the same
    sampler drives TFLite and Keras and the sequences can be compared.
    """
    if len(prompt) == 0:
        raise ValueError("Argument `prompt` must hold at least one token. Received: prompt=[]")
    rng = np.random.default_rng(seed)
    for token in prompt[:-1]:
        step(np.array([token], np.int32))
    tokens, token = list(prompt), prompt[-1]
    for _ in range(length):
        token = sample_next(step(np.array([token], np.int32)), rng, temperature)
        tokens.append(token)
    return tokens


def latency(call: Callable, steps: int = 200, warmup: int = 20) -> dict:
    """Mean, p50 and p90 microseconds of `call()` over `steps` calls after `warmup` ones."""
    for _ in range(warmup):
        call()
    times = np.empty(steps)
    for i in range(steps):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    times *= 1e6
    return {
        "mean_us": float(times.mean()),
        "p50_us": float(np.percentile(times, 50)),
        "p90_us": float(np.percentile(times, 90)),
        "steps": steps,
    }


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
            raise ValueError(
                f"The model lacks the signature(s) {sorted(missing)} of a translator export"
            )
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


def pad_source(source_ids, max_source_len):
    """Source ids as the (1, max_source_len) int32 input of `encode`, zero-padded; ValueError
    if they do not fit."""
    source_ids = np.asarray(source_ids, np.int32).reshape(-1)
    if len(source_ids) > max_source_len:
        raise ValueError(
            f"The source holds {len(source_ids)} tokens, more than the exported "
            f"max_source_len={max_source_len}"
        )
    padded = np.zeros((1, max_source_len), np.int32)
    padded[0, : len(source_ids)] = source_ids
    return padded


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

    return {
        "encode": latency(
            lambda: translator.encode(source), max(1, steps // 10), max(1, warmup // 10)
        ),
        "decode_step": latency(step, steps, warmup),
        "num_threads": num_threads,
        "bytes": os.path.getsize(path),
    }


def bench_tflite(
    path: str | os.PathLike,
    steps: int = 200,
    warmup: int = 20,
    num_threads: int = 2,
    signature: str = "step",
) -> dict:
    """Per-call latency of a signature of a .tflite file in LiteRT, in microseconds.

    The inputs are zeros and the states are fed back, as in generation. Returns a dict with
    mean_us, p50_us, p90_us, steps, num_threads and the file size in bytes. A translator's
    file (`encode` and `decode_step` signatures) gets both timed instead, see
    `bench_translator`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .tflite file at model={str(path)!r}")
    try:
        signatures = Interpreter(model_path=str(path)).get_signature_list()
    except ValueError as error:
        raise ValueError(f"{path}: not a TFLite file ({str(error).strip()[:120]})") from None
    if {"encode", "decode_step"} <= set(signatures):
        return bench_translator(path, steps, warmup, num_threads)
    stepper = TFLiteStepper(path, num_threads=num_threads, signature=signature)
    x = np.zeros(stepper.inputs["x"]["shape"], stepper.inputs["x"]["dtype"])
    return {
        "signature": signature,
        **latency(lambda: stepper(x), steps, warmup),
        "num_threads": num_threads,
        "bytes": os.path.getsize(path),
    }


def window(x, seq_len) -> np.ndarray:
    """The first seq_len steps of x (T, C), zero-padded to seq_len: a classifier's window."""
    x = np.asarray(x, np.float32)[:seq_len]
    return np.pad(x, [(0, seq_len - len(x)), (0, 0)])


def classify_file(model, sequences, num_threads=1, signature=None) -> np.ndarray:
    """Class probabilities (N, K) of a classifier .tflite file (a path or its bytes) over
    (x (T, C), length) pairs: its `classify` signature on each window, or, for a streaming
    file, `step` fed one sample at a time."""
    interpreter = (
        Interpreter(model_content=bytes(model), num_threads=num_threads)
        if isinstance(model, (bytes, bytearray))
        else Interpreter(model_path=str(model), num_threads=num_threads)
    )
    names = interpreter.get_signature_list()
    signature = signature or ("classify" if "classify" in names else "step")
    runner = interpreter.get_signature_runner(signature)
    details = runner.get_input_details()
    results = []
    for x, length in sequences:
        if signature == "classify":
            seq_len = details["x"]["shape"][1]
            results.append(
                runner(
                    x=window(x, seq_len)[None], length=np.array([min(length, seq_len)], np.int32)
                )["probabilities"][0]
            )
            continue
        states = {n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != "x"}
        for t in range(length):
            outputs = runner(x=np.asarray(x[t : t + 1], np.float32), **states)
            states = {n: outputs[n] for n in states}
        results.append(outputs["probabilities"][0])
    return np.array(results)
