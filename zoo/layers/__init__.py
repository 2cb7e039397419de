"""Sequence-level layers: the fast recurrent layer, attention."""

from zoo.layers.recurrent import Recurrent

__all__ = ["Recurrent"]
