"""One recurrent layer's forward and forward+backward time: the A/B measurement behind
`benchmarks/attempts.md`.

    python -m benchmarks.layer --cell lstm --units 256 512 --precision mixed_bfloat16 \
        --tf-threads 1,2

A `zoo.layers.Recurrent` layer (or `keras.layers.LSTM`/`GRU` with `--keras`) on a random
batch (64 x 100 x 64 features by default), called in a `tf.function` with `training=True`;
forward+backward takes the gradients of the sum of squared outputs with respect to the input
and every weight. Prints the median milliseconds of `--calls` calls after three warm-up calls,
one line per size. Run it on a quiet machine and compare runs made back to back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def parse(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.layer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cell", default="lstm", help="zoo cell name (default: lstm)")
    parser.add_argument("--units", type=int, nargs="+", default=[256, 512], help="sizes H")
    parser.add_argument(
        "--precision",
        default="float32",
        help="Keras dtype policy, e.g. mixed_bfloat16 (default: float32)",
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--calls", type=int, default=15, help="timed calls (default: 15)")
    parser.add_argument(
        "--tf-threads",
        default="0,0",
        metavar="INTRA,INTER",
        help="TensorFlow's intra- and inter-op threads (0 = its default)",
    )
    parser.add_argument(
        "--keras", action="store_true", help="time keras.layers.LSTM/GRU instead (cell lstm or gru)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from benchmarks.run import parse_threads
    from pipelines.threads import set_threads

    set_threads(*parse_threads(args.tf_threads))  # before TensorFlow's first op
    import keras
    import tensorflow as tf

    import zoo
    from zoo.layers import Recurrent

    keras.mixed_precision.set_global_policy(args.precision)
    for units in args.units:
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
