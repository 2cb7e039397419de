"""Cells' arguments have one name per concept (Keras's style: `projection_units` like `units`,
`use_peepholes` like `use_bias`, `epsilon` like `LayerNormalization`); configs saved under the
earlier names (`proj_size`, `peepholes`) still load, to the same weights and outputs."""

import json
import zipfile

import keras
import numpy as np
import pytest

from pipelines.moving_shapes import MovingShapesConfig
from zoo import cells, testing
from zoo.cells.conv_lstm import ConvLSTMCell, ConvRNN
from zoo.layers import Recurrent


def _renamed(config, names):
    """`config` (nested dicts and lists) with every key in `names` renamed to its value."""
    if isinstance(config, dict):
        return {names.get(key, key): _renamed(value, names) for key, value in config.items()}
    if isinstance(config, list):
        return [_renamed(value, names) for value in config]
    return config


def _save_with_old_names(model, path, old_names):
    """Save `model` as a .keras file whose config spells arguments by `old_names` (new name:
    old name), as a file written before the rename does."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    old_config = _renamed(config, old_names)
    assert old_config != config
    members["config.json"] = json.dumps(old_config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    "cell_name, old_names",
    [
        ("projection_lstm", {"projection_units": "proj_size"}),
        ("conv_lstm", {"use_peepholes": "peepholes"}),
    ],
)
def test_a_keras_file_saved_with_the_old_names_loads_the_same_model(cell_name, old_names, tmp_path):
    if cell_name == "projection_lstm":
        inputs = keras.Input((5, 3))
        cell = cells.create(cell_name, 6, projection_units=3, use_peepholes=True)
        outputs = Recurrent(cell, return_sequences=True)(inputs)
        x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    else:
        inputs = keras.Input((4, 6, 6, 1))
        outputs = ConvRNN(ConvLSTMCell(2, 3, use_peepholes=False), return_sequences=True)(inputs)
        x = np.random.default_rng(0).normal(size=(2, 4, 6, 6, 1)).astype("float32")
    model = keras.Model(inputs, outputs)
    testing.randomize_weights(model, seed=1)
    path = str(tmp_path / "old.keras")
    _save_with_old_names(model, path, old_names)

    loaded = keras.models.load_model(path)

    loaded_cell = loaded.layers[-1].cell
    assert loaded_cell.get_config() == model.layers[-1].cell.get_config()  # today's names
    np.testing.assert_array_equal(loaded(x), model(x))


def test_old_names_are_the_same_arguments_and_not_both():
    cell = cells.get("projection_lstm")
    old = cell(8, proj_size=3, name="cell").get_config()
    assert old == cell(8, projection_units=3, name="cell").get_config()
    assert not ConvLSTMCell(4, peepholes=False).use_peepholes
    with pytest.raises(TypeError, match="both `proj_size` and `projection_units`"):
        cells.create("projection_lstm", 8, proj_size=3, projection_units=4)


def test_a_saved_run_config_with_the_old_peephole_setting_loads(tmp_path):
    path = tmp_path / "config.json"
    saved = (
        MovingShapesConfig(use_peepholes=False).to_json().replace('"use_peepholes"', '"peepholes"')
    )
    path.write_text(saved)
    assert '"peepholes": false' in saved
    assert MovingShapesConfig.load(str(path)) == MovingShapesConfig(use_peepholes=False)
