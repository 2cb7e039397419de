"""Sequence-level layers: the fast recurrent layer, attention."""

from zoo.layers.attention import BahdanauAttention, LuongAttention
from zoo.layers.recurrent import Recurrent

__all__ = ["BahdanauAttention", "LuongAttention", "Recurrent"]
