"""One recurrent layer's forward and forward+backward time: the A/B measurement behind
`benchmarks/attempts.md`.

    python -m benchmarks.layer --cell=lstm --units=256,512 --precision=mixed_bfloat16 \
        --tf_threads=1,2

A `zoo.layers.Recurrent` layer (or `keras.layers.LSTM`/`GRU` with `--keras`) on a random
batch (64 x 100 x 64 features by default), called in a `tf.function` with `training=True`;
forward+backward takes the gradients of the sum of squared outputs with respect to the input
and every weight. Prints the median milliseconds of `--calls` calls after three warm-up calls,
one line per size. Run it on a quiet machine and compare runs made back to back.
"""

from __future__ import annotations

import os
import statistics
import time

from pipelines import script_flags as flags


def define_flags(flags, values):
    """The flags of `python -m benchmarks.layer` (see `pipelines.script_flags.parse`)."""
    flags.DEFINE_string("cell", "lstm", "Zoo cell name.", flag_values=values)
    flags.DEFINE_list("units", ["256", "512"], "Sizes H.", flag_values=values)
    flags.DEFINE_string(
        "precision", "float32", "Keras dtype policy, e.g. mixed_bfloat16.", flag_values=values
    )
    for name, default in (("batch", 64), ("length", 100), ("features", 64), ("calls", 15)):
        flags.DEFINE_integer(
            name, default, f"{name.capitalize()}.", lower_bound=1, flag_values=values
        )
    flags.DEFINE_string(
        "tf_threads",
        "0,0",
        "TensorFlow's intra- and inter-op threads INTRA,INTER (0: its default).",
        flag_values=values,
    )
    flags.DEFINE_boolean(
        "keras", False, "Time keras.layers.LSTM/GRU instead (cell lstm or gru).", flag_values=values
    )


def main(argv=None):
    args = flags.parse(argv, "python -m benchmarks.layer", __doc__, define_flags)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from pipelines.threads import set_threads

    set_threads(*flags.threads(args.tf_threads))  # before TensorFlow's first op
    import keras
    import tensorflow as tf

    import zoo
    from zoo.layers import Recurrent

    keras.mixed_precision.set_global_policy(args.precision)
    for units in map(int, args.units):
        keras.utils.set_random_seed(0)
        if args.keras:
            layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[args.cell](
                units, return_sequences=True
            )
        else:
            layer = Recurrent(zoo.cells.create(args.cell, units), return_sequences=True)
        x = tf.random.normal((args.batch, args.length, args.features), seed=0)
        layer(x)

        @tf.function
        def forward(x, layer=layer):
            return [layer(x, training=True)]

        @tf.function
        def forward_backward(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.cast(layer(x, training=True), "float32") ** 2)
            return tape.gradient(loss, [x, *layer.trainable_weights])

        forward_ms, both_ms = (_median_ms(fn, x, args.calls) for fn in (forward, forward_backward))
        name = f"keras.layers.{args.cell.upper()}" if args.keras else f"Recurrent({args.cell})"
        print(
            f"{name} H={units} {args.precision} threads {args.tf_threads}: forward "
            f"{forward_ms:.1f} ms, forward+backward {both_ms:.1f} ms",
            flush=True,
        )


def _median_ms(fn, x, calls):
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        for t in fn(x):
            t.numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


if __name__ == "__main__":
    main()
