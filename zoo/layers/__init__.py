"""Sequence-level layers: the fast recurrent layer, attention."""
