"""The LSTM model zoo: recurrent cells, sequence layers and task models for Keras 3.

    import zoo
    zoo.cells.names()                                  # every registered cell
    zoo.layers.Recurrent(zoo.cells.create("lstm", 64))
    zoo.models.language_model.LanguageModel(vocab_size=80, cell="gru")
    zoo.export.export_model(model, "exports/lm")       # imported on first use
    zoo.presets.load("shakespeare_lstm").generate("ROMEO:")   # a trained preset

Importing the package registers every Keras-serializable class the zoo writes into `.keras`
files, so `keras.saving.load_model` reads them with nothing imported but `zoo`.
"""

from zoo import cells, decoding, layers, models, presets

__all__ = ["cells", "decoding", "export", "layers", "models", "presets"]
__version__ = "0.1.0"

_LAZY = ("export",)  # needs the `export` extra (LiteRT) and costs import time: loaded on use


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
