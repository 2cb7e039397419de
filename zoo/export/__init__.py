"""Export to serving and to mobile: SavedModel, TFLite (fused, streaming, quantised), parity.

    import zoo.export
    manifest = zoo.export.export_model(model, "exports/lm", quantize=["none", "int8"],
                                       representative_data=batches)
    zoo.export.bench_tflite("exports/lm/model.tflite")   # per-step latency in LiteRT

See `InferenceModule` for the signatures and `export_model` for the files written; the
translator (`Seq2Seq`) has its own `export_seq2seq` (`encode` and `decode_step` signatures), a
sequence classifier its own `export_classifier` (`classify` and a streaming `step`).
"""

from zoo.export.classifier import ClassifierModule, classify_file, export_classifier
from zoo.export.export import (
    EXPORT_FORMAT,
    FORMATS,
    atomic_directory,
    check_out_dir,
    export_kind,
    export_model,
    tflite_filename,
)
from zoo.export.metadata import read_metadata, with_metadata
from zoo.export.module import InferenceModule
from zoo.export.parity import ParityError, QualityError, check_parity, parity
from zoo.export.runtime import TFLiteStepper, bench_tflite, generate, sample_next
from zoo.export.seq2seq import export_seq2seq
from zoo.export.seq2seq_module import Seq2SeqModule
from zoo.export.tflite import QUANTIZATIONS, convert, ops_used
from zoo.export.translator import TFLiteTranslator

__all__ = [
    "EXPORT_FORMAT",
    "ClassifierModule",
    "FORMATS",
    "QUANTIZATIONS",
    "InferenceModule",
    "ParityError",
    "QualityError",
    "Seq2SeqModule",
    "TFLiteStepper",
    "TFLiteTranslator",
    "atomic_directory",
    "bench_tflite",
    "check_out_dir",
    "check_parity",
    "classify_file",
    "convert",
    "export_kind",
    "export_classifier",
    "export_model",
    "export_seq2seq",
    "generate",
    "ops_used",
    "parity",
    "read_metadata",
    "sample_next",
    "tflite_filename",
    "with_metadata",
]
