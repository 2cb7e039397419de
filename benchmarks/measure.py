"""The measurements of `benchmarks.run`, each meant to run in a fresh process (`run._in_child`):
training speed of one case in Keras or PyTorch, matmul peak, and generation-step latency."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import resource
import statistics
import tempfile
import time

from benchmarks.report import EMBED, VOCAB


def quiet():
    """TensorFlow's native logs off, Keras on its TensorFlow backend (before importing them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _data(settings):
    import numpy as np

    x = np.random.default_rng(0).integers(1, VOCAB, (settings.batch, settings.length))
    y = np.concatenate([np.zeros((settings.batch, 1), x.dtype), x[:, :-1]], axis=1)
    return x.astype("int32"), y.astype("int32")


def _timed(step, settings):
    """Tokens per second of each repeat, tokens per CPU-second (all threads), final loss."""
    for _ in range(settings.warmup):
        loss = step()
    rates, cpu_seconds = [], 0.0
    for _ in range(settings.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(settings.steps):
            loss = step()
        rates.append(
            settings.batch * settings.length * settings.steps / (time.perf_counter() - start)
        )
        cpu_seconds += time.process_time() - start_cpu
    tokens = settings.batch * settings.length * settings.steps * settings.repeats
    return rates, tokens / cpu_seconds, float(loss)


def train_keras(case, settings):
    quiet()
    import keras

    from pipelines.threads import set_threads

    set_threads(*settings.tf_threads)  # before TensorFlow's first op

    import zoo
    from zoo.layers import Recurrent

    start_mib = _rss_mib()
    keras.mixed_precision.set_global_policy(case.precision)
    keras.utils.set_random_seed(0)
    if case.model == "keras":
        keras_layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[case.cell]
        layer = keras_layer(case.units, return_sequences=True)
    else:
        cell = zoo.cells.create(case.cell, case.units)
        layer = {
            "zoo": lambda: Recurrent(cell, return_sequences=True),
            "fused": lambda: Recurrent(cell, return_sequences=True, fused=True),
            "rnn": lambda: keras.layers.RNN(cell, return_sequences=True),
        }[case.model]()
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(settings.batch, settings.length), dtype="int32"),
            keras.layers.Embedding(VOCAB, EMBED),
            layer,
            keras.layers.Dense(VOCAB),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    x, y = _data(settings)
    timing = _timed(lambda: model.train_on_batch(x, y), settings)
    embedding = model.layers[0].embeddings
    matmul_weights = sum(
        _prod(w.shape)
        for w in model.trainable_weights
        if len(w.shape) >= 2 and w is not embedding and "bias" not in w.name  # GRU: (2, 3H)
    )
    return _result(case, *timing, matmul_weights, start_mib)


def _prod(shape):
    out = 1
    for d in shape:
        out *= int(d)
    return out


def train_torch(case, settings):
    """PyTorch with its defaults: on CPU, nn.LSTM/GRU run oneDNN's fused RNN kernel (forward
    and backward), and OpenMP threads spin while they wait (on a loaded machine that spinning
    costs torch up to half its speed; OMP_WAIT_POLICY=PASSIVE trades it for idle-machine speed).
    "torch-loop" turns oneDNN off: the per-step loop of matmuls and element-wise ops."""
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.backends.mkldnn.enabled = case.model != "torch-loop"
    torch.manual_seed(0)
    start_mib = _rss_mib()
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[case.cell](
        EMBED, case.units, batch_first=True
    )
    embedding, dense = torch.nn.Embedding(VOCAB, EMBED), torch.nn.Linear(case.units, VOCAB)
    modules = torch.nn.ModuleList([embedding, rnn, dense])
    optimizer = torch.optim.Adam(modules.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a.astype(np.int64)) for a in _data(settings))

    bf16 = case.precision != "float32"  # torch's best CPU precision: bfloat16 autocast

    def step():
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = dense(rnn(embedding(x))[0])
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss.item()

    timing = _timed(step, settings)
    matmul_weights = sum(
        p.numel() for p in modules.parameters() if p.dim() >= 2 and p is not embedding.weight
    )
    return _result(case, *timing, matmul_weights, start_mib)


def _result(case, rates, per_cpu_second, loss, matmul_weights, start_mib):
    median = statistics.median(rates)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        **dataclasses.asdict(case),
        "label": case.label,
        "tokens_per_s": {"median": median, "min": min(rates), "max": max(rates)},
        "rates": rates,  # every repetition, for merging rounds
        "tokens_per_cpu_s": per_cpu_second,
        "gflops": 6 * matmul_weights * median / 1e9,
        "loss": loss,
        "peak_rss_mib": round(peak_mib),
        "train_mib": round(peak_mib - start_mib),
    }


def matmul_peak(units):
    """GFLOP/s of TF (and torch) matmuls: large square, and the LSTM step shape."""
    quiet()
    import tensorflow as tf

    def rate(fn, flops, repeats=10):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(flops / statistics.median(times) / 1e9, 1)

    shapes = {
        "2048x2048x2048": (2048, 2048, 2048),
        f"step 64x{units}x{4 * units}": (64, units, 4 * units),
    }
    out = {}
    for name, (m, k, n) in shapes.items():
        for dtype in ("float32", "bfloat16"):
            a, b = tf.ones((m, k), dtype), tf.ones((k, n), dtype)
            out[f"tf {dtype} {name}"] = rate(
                lambda a=a, b=b: tf.matmul(a, b).numpy(), 2 * m * k * n
            )
        if importlib.util.find_spec("torch"):
            import torch

            a, b = torch.ones(m, k), torch.ones(k, n)
            out[f"torch float32 {name}"] = rate(lambda a=a, b=b: a @ b, 2 * m * k * n)
    return out


def step_latency(units, with_torch, calls=300):
    """Microseconds per generation step, batch 1, explicit state (median of `calls`)."""
    quiet()
    import keras
    import tensorflow as tf

    import zoo

    def median_us(fn):
        for _ in range(20):
            fn()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(statistics.median(times) * 1e6, 1)

    out = {}
    x = tf.ones((1, EMBED))
    for name, cell in (
        ("zoo lstm (tf.function)", zoo.cells.create("lstm", units)),
        ("keras LSTMCell (tf.function)", keras.layers.LSTMCell(units)),
    ):
        states = [tf.zeros((1, units))] * 2
        step = tf.function(lambda x, h, c, cell=cell: cell(x, [h, c]))
        out[name] = median_us(lambda step=step, states=states: step(x, *states)[0].numpy())
    if with_torch:
        import torch

        cell = torch.nn.LSTMCell(EMBED, units)
        xt, state = torch.ones(1, EMBED), (torch.zeros(1, units), torch.zeros(1, units))
        with torch.no_grad():
            out["torch LSTMCell"] = median_us(lambda: cell(xt, state))
    return out


def tflite_latency(units):
    """Microseconds per generation step of the exported LM's `step` signature in LiteRT."""
    quiet()
    import keras

    import zoo
    import zoo.export
    from zoo.layers import Recurrent

    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(VOCAB, EMBED),
            Recurrent(zoo.cells.create("lstm", units), return_sequences=True),
            keras.layers.Dense(VOCAB),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        zoo.export.export_model(model, tmp, format="tflite", seq_len=8)
        result = zoo.export.bench_tflite(os.path.join(tmp, "model.tflite"))
    return {"zoo lstm, TFLite step in LiteRT (2 threads)": result["p50_us"]}
