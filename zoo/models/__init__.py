"""Task models that accept any registered cell; importing this registers them all for `.keras`.

    zoo.models.language_model.LanguageModel   text (and melodies: `melody`)
    zoo.models.polyphonic.PolyphonicModel     piano rolls
    zoo.models.harmony.SerialChoraleModel     four-part chorales as SATB tokens
    zoo.models.frame_chorale.FrameChoraleModel  the same, one step per chord
    zoo.models.seq2seq.Seq2Seq                translation
    zoo.models.ctc.CTCModel                   sequence labelling (speech)
    zoo.models.forecaster.Forecaster          probabilistic forecasting (DeepAR-style)
    zoo.models.classifier.SequenceClassifier  sequence classification (sensor windows)

The models that generate share one step protocol (`zoo.models.protocol.StepModel`).
"""

from zoo.models import (
    classifier,
    ctc,
    distributions,
    forecaster,
    frame_chorale,
    harmony,
    language_model,
    melody,
    polyphonic,
    protocol,
    seq2seq,
)
from zoo.models.protocol import StepModel

__all__ = [
    "StepModel",
    "classifier",
    "ctc",
    "distributions",
    "forecaster",
    "frame_chorale",
    "harmony",
    "language_model",
    "melody",
    "polyphonic",
    "protocol",
    "seq2seq",
]
