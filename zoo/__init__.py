"""The LSTM model zoo: recurrent cells, sequence layers and task models for Keras 3."""

from zoo import cells

__all__ = ["cells"]
__version__ = "0.1.0"
