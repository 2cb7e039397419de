"""The private Keras and TensorFlow symbols the zoo needs, each behind one name here.

Each has no public equivalent in the versions of `CHECKED`; a release that moves one fails
at import with one line naming the symbol, what it is for, and the versions it was checked
on (tests/test_compat.py pins them):

    autocast_scope(dtype)             Keras's autocast scope: a cell's step in float32 under
                                      a mixed-precision policy
    compute_output_spec(fn, *args)    the output spec of `fn` traced symbolically, never run
    cudnn_lstm, cudnn_gru             Keras's cuDNN kernels (what keras.layers.LSTM/GRU run)
    in_xla_context()                  whether the graph being built compiles with XLA
    could_record_gradient()           whether a gradient tape may record the ops run now
"""

from __future__ import annotations

import importlib

# The releases every symbol below was checked on.
CHECKED = {"keras": "3.15", "tensorflow": "2.21"}


def private(module: str, name: str, purpose: str):
    """`module.name`, or an ImportError of one line naming it, its purpose and `CHECKED`."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        checked = ", ".join(f"{lib} {version}" for lib, version in CHECKED.items())
        raise ImportError(
            f"lstm-zoo needs the private {module}.{name} ({purpose}), which this Keras or "
            f"TensorFlow no longer has; it was checked on {checked}: install those versions"
        ) from None


autocast_scope = private("keras.src.backend", "AutocastScope", "mixed-precision steps")
compute_output_spec = private(
    "keras.src.backend", "compute_output_spec", "the shape of a step's output"
)
cudnn_lstm = private("keras.src.backend", "lstm", "cuDNN LSTM kernel")
cudnn_gru = private("keras.src.backend", "gru", "cuDNN GRU kernel")
_in_xla = private(
    "tensorflow.python.ops.control_flow_util",
    "GraphOrParentsInXlaContext",
    "whether a graph compiles with XLA",
)
could_record_gradient = private(
    "tensorflow.python.eager.record", "could_possibly_record", "whether a gradient tape records"
)


def in_xla_context() -> bool:
    """Whether the graph being built (or one enclosing it) compiles with XLA."""
    import tensorflow as tf

    return bool(_in_xla(tf.compat.v1.get_default_graph()))
