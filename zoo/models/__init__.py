"""Task models that accept any registered cell; importing this registers them all for `.keras`.

    zoo.models.language_model.LanguageModel   text (and melodies: `melody`)
    zoo.models.polyphonic.PolyphonicModel     piano rolls
    zoo.models.seq2seq.Seq2Seq                translation
    zoo.models.ctc.CTCModel                   sequence labelling (speech)
"""

from zoo.models import ctc, language_model, melody, polyphonic, seq2seq

__all__ = ["ctc", "language_model", "melody", "polyphonic", "seq2seq"]
