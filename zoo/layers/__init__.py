"""Sequence-level layers: the fast recurrent layer, attention, xLSTM blocks."""

from zoo.layers.attention import BahdanauAttention, LuongAttention
from zoo.layers.recurrent import Recurrent, sequence_layer
from zoo.layers.xlstm import HeadwiseNorm, MLSTMBlock, SLSTMBlock

__all__ = [
    "BahdanauAttention",
    "HeadwiseNorm",
    "LuongAttention",
    "MLSTMBlock",
    "Recurrent",
    "SLSTMBlock",
    "sequence_layer",
]
