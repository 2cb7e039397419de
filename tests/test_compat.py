"""The private Keras/TensorFlow symbols of `zoo.compat`: present in the installed versions,
which are those they were checked on, and a missing one is named in one line."""

import keras
import pytest
import tensorflow as tf

from zoo import compat


def test_installed_versions_are_those_the_private_symbols_were_checked_on():
    installed = {"keras": keras.__version__, "tensorflow": tf.__version__}
    for library, checked in compat.CHECKED.items():
        release = ".".join(installed[library].split(".")[:2])
        assert release == checked, (
            f"{library} {installed[library]} is installed but zoo/compat.py's private symbols "
            f"were checked on {library} {checked}: check each one on this release (see "
            f"tests/test_compat.py) and update CHECKED"
        )


def test_every_private_symbol_resolves_to_something_callable():
    for name in (
        "autocast_scope",
        "compute_output_spec",
        "cudnn_lstm",
        "cudnn_gru",
        "could_record_gradient",
        "in_xla_context",
    ):
        assert callable(getattr(compat, name)), name
    assert compat.in_xla_context() is False
    assert compat.could_record_gradient() is False
    with tf.GradientTape():
        assert compat.could_record_gradient() is True


def test_a_symbol_a_release_removed_is_named_in_one_line():
    with pytest.raises(ImportError) as error:
        compat.private("keras.src.backend", "NoSuchThing", "a test")
    message = str(error.value)
    assert "keras.src.backend.NoSuchThing (a test)" in message
    assert "keras 3.15, tensorflow 2.21" in message and "\n" not in message


def test_no_module_outside_compat_imports_a_private_keras_or_tensorflow_symbol():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for folder in ("zoo", "pipelines", "benchmarks")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "compat.py"
        and any(word in path.read_text() for word in ("keras.src", "tensorflow.python"))
    ]
    assert offenders == []
