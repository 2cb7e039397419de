"""`import zoo` alone is enough: it exposes the public API and registers every `.keras` class."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

import zoo
from zoo.models.language_model import LanguageModel
from zoo.models.polyphonic import FrameNLL, NLLPerStep, PolyphonicModel

ROOT = pathlib.Path(__file__).parents[1]


def run_fresh(script, cwd=None):
    """Run `script` in a new interpreter that has imported nothing; its stdout."""
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, f"{script}\n--- stderr ---\n{result.stderr[-4000:]}"
    return result.stdout


def test_public_api_and_lazy_export():
    assert {"cells", "layers", "models", "decoding", "export"} <= set(dir(zoo))
    assert zoo.layers.Recurrent and zoo.models.seq2seq.Seq2Seq and zoo.decoding
    out = run_fresh(
        "import sys, zoo; print('zoo.export' in sys.modules); "
        "print(zoo.export.export_model.__module__)"
    )
    assert out.split() == ["False", "zoo.export.exporters"]


def test_checkpoints_load_in_a_fresh_process_with_only_import_zoo(tmp_path):
    ids = np.array([[1, 2, 3]], np.int32)
    lm = LanguageModel(vocab_size=7, cell="slstm", units=4, layers=1, embedding_dim=3)
    lm(ids)
    lm.save(tmp_path / "lm.keras")
    rolls = np.zeros((1, 3, 5), np.float32)
    music = PolyphonicModel(5, cell="gru", units=4)
    music.compile(optimizer="adam", loss=FrameNLL(), metrics=[NLLPerStep()])
    music.fit(rolls, rolls, epochs=1, verbose=0)  # a compiled, trained checkpoint as runs write
    music.save(tmp_path / "music.keras")
    np.save(tmp_path / "expected.npy", np.asarray(lm(ids)))
    out = run_fresh(
        "import keras, numpy as np, zoo\n"
        "lm = keras.saving.load_model('lm.keras')\n"
        "music = keras.saving.load_model('music.keras')\n"
        "print(type(lm).__name__, type(music).__name__, type(music.loss).__name__)\n"
        "np.testing.assert_allclose(lm(np.array([[1, 2, 3]], 'int32')), np.load('expected.npy'),"
        " atol=1e-6)\n",
        cwd=tmp_path,
    )
    assert out.split() == ["LanguageModel", "PolyphonicModel", "FrameNLL"]


def test_import_zoo_registers_every_serializable_class_of_the_package():
    out = run_fresh(
        "import importlib, keras, pkgutil, zoo\n"
        "before = set(keras.saving.get_custom_objects())\n"
        "for m in pkgutil.walk_packages(zoo.__path__, 'zoo.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(set(keras.saving.get_custom_objects()) - before))\n"
    )
    assert out.strip() == "[]", f"registered only when their module is imported: {out}"
    assert "zoo>LanguageModel" in keras.saving.get_custom_objects()
