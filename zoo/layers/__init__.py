"""Sequence-level layers: the fast recurrent layer, attention."""

from zoo.layers.attention import BahdanauAttention, LuongAttention
from zoo.layers.recurrent import Recurrent, sequence_layer

__all__ = ["BahdanauAttention", "LuongAttention", "Recurrent", "sequence_layer"]
