"""TensorFlow's thread pools: sized before its first op, or not at all."""

from __future__ import annotations

import os


def set_threads(intra_op=0, inter_op=0):
    """Size TensorFlow's thread pools (0 leaves one as it is). They are fixed once TensorFlow
    has run its first op (the command line sizes them before that); a different size asked
    for later is logged and not applied: it changes the speed, not the run."""
    import tensorflow as tf
    from absl import logging

    pools = (
        (
            "intra_op_threads",
            intra_op,
            tf.config.threading.get_intra_op_parallelism_threads,
            tf.config.threading.set_intra_op_parallelism_threads,
        ),
        (
            "inter_op_threads",
            inter_op,
            tf.config.threading.get_inter_op_parallelism_threads,
            tf.config.threading.set_inter_op_parallelism_threads,
        ),
    )
    for name, threads, get, put in pools:
        if threads and threads != get():
            try:
                put(threads)
            except RuntimeError:
                logging.warning(
                    "--%s=%d not applied: TensorFlow has already started with %s "
                    "(give the flag to a new process)",
                    name,
                    threads,
                    get() or "its default",
                )


def import_tensorflow(intra_op=None, inter_op=None):
    """Import TensorFlow and Keras and start the runtime (its start-up lines come now), its
    thread pools sized first: `intra_op` threads per op, `inter_op` ops side by side (None or
    0: TensorFlow's default)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras  # noqa: F401
    import tensorflow as tf

    set_threads(intra_op, inter_op)
    tf.config.list_physical_devices()
    tf.constant(0) + 0
