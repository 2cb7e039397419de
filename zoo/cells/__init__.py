"""Every recurrent cell of the zoo, registered by name.

    import zoo
    zoo.cells.names()            # ['cifg_lstm', 'fgr_lstm', 'gru', 'lstm', ...]
    cell = zoo.cells.get("lstm")(128)
    layer = keras.layers.RNN(cell, return_sequences=True)

A new cell is one module in this package decorated with `@register("name")`: it is imported
here automatically, so the registry, the shared tests and the README table pick it up.
"""

import importlib
import pkgutil

from zoo.cells.base import RecurrentCell
from zoo.registry import CELLS

register = CELLS.register
get = CELLS.get
names = CELLS.names


def create(name: str, units: int, **kwargs) -> RecurrentCell:
    """An instance of the cell registered as `name`."""
    return get(name)(units, **kwargs)


def table() -> str:
    """A Markdown table of every registered cell: name, class, paper, parameter count."""
    rows = [
        "| name | class | paper | parameters (input X, units H) |",
        "| --- | --- | --- | --- |",
    ]
    for name in names():
        cell = create(name, 8)
        rows.append(
            f"| `{name}` | `{type(cell).__name__}` | {cell.paper} | `{cell.parameter_formula()}` |"
        )
    return "\n".join(rows)


for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["create", "get", "names", "register", "table"]
