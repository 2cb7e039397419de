"""SavedModel export: the `step` and `predict` serving signatures, loadable without the zoo."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def save(module, path) -> None:
    """Write `module` (an `InferenceModule`) as a SavedModel with its two signatures."""
    tf.saved_model.save(module, str(path), signatures=module.signatures())


def reload_difference(module, path, sequence) -> float:
    """Max abs difference of the reloaded SavedModel's `predict` from `module`'s on `sequence`.

    The reload uses only `tf.saved_model.load` and the serving signature, as a user would.
    """
    inputs = {
        "x": tf.constant(sequence, module.predict.input_signature[0].dtype),
        **module.zero_states(),
    }
    reloaded = tf.saved_model.load(str(path)).signatures["predict"](**inputs)["output"]
    return float(np.abs(reloaded.numpy() - module.run("predict", inputs)["output"].numpy()).max())
