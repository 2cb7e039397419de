"""Name -> class registries (cells, attentions, tasks), Keras-serializable by construction."""

from __future__ import annotations

import fnmatch

import keras


class Registry:
    """A named collection of classes; `register` also makes each class Keras-serializable.

    Example:
        CELLS = Registry("cell")
        ATTENTIONS = Registry("attention")

        @CELLS.register("lstm")
        class LSTMCell(keras.layers.Layer): ...

        CELLS.get("lstm") is LSTMCell
    """

    def __init__(self, kind: str, serializable: bool = True):
        self.kind, self.serializable = kind, serializable
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator: register under `name` and, if the registry is `serializable`, as
        `zoo>ClassName` for `.keras` files."""

        def decorate(cls):
            if name in self._classes:
                raise ValueError(
                    f"A {self.kind} named {name!r} is already registered "
                    f"({self._classes[name].__qualname__}); pick another name."
                )
            cls.registry_name = name
            if self.serializable:
                cls = keras.saving.register_keras_serializable(package="zoo")(cls)
            self._classes[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type:
        """The class registered as `name`; KeyError listing the known names otherwise."""
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(
                f"Unknown {self.kind} {name!r}. Known {self.kind}s: {', '.join(self.names())}"
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style `pattern` (e.g. "*_lstm")."""
        return sorted(n for n in self._classes if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._classes


CELLS = Registry("cell")
ATTENTIONS = Registry("attention")
