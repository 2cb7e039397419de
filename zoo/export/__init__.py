"""Export to serving and to mobile: SavedModel, TFLite (fused, streaming, quantised), parity.

    import zoo.export
    manifest = zoo.export.export(model, "exports/lm", quantize=["none", "int8"],
                                 representative_data=batches)
    zoo.export.bench_tflite("exports/lm/model.tflite")   # per-step latency in LiteRT

The export asks the model only through its protocol (`zoo.models.protocol`): a step model's
`step` and `prefill` become the `step` and `predict` signatures (`InferenceModule`,
`export_model`), an encoder-decoder's stages `encode` and `decode_step` (`Seq2SeqModule`,
`export_seq2seq`), a classifier's `classify` and streaming `step` (`ClassifierModule`,
`export_classifier`). The modules, by what they hold:

    exporters        export, export_model, export_seq2seq: the folder's files, checked
    signatures       InferenceModule: a step model's graphs
    encoder_decoder  Seq2SeqModule: an encoder-decoder's graphs
    classification   ClassifierModule, export_classifier: a classifier's graphs and files
    conversion       TFLite conversion, builtin ops only; the ops a file uses
    fusion           the fused TFLite LSTM op: which cells it computes, and completing it
    quantization     what int8 files compute in int8
    parity           parity with Keras and the quality gate's score
    runtime          running files in LiteRT: stepping, sampling, translating, classifying,
                     latency
    manifest         the export folder, its manifest, what may be replaced
    metadata         the manifest and extra files inside each .tflite file
"""

from zoo.export.classification import ClassifierModule, export_classifier
from zoo.export.conversion import QUANTIZATIONS, convert, ops_used
from zoo.export.encoder_decoder import Seq2SeqModule
from zoo.export.exporters import export, export_model, export_seq2seq
from zoo.export.manifest import (
    EXPORT_FORMAT,
    FORMATS,
    atomic_directory,
    check_out_dir,
    export_kind,
    tflite_filename,
)
from zoo.export.metadata import read_metadata, with_metadata
from zoo.export.parity import ParityError, QualityError, check_parity, parity
from zoo.export.runtime import (
    TFLiteStepModel,
    TFLiteStepper,
    TFLiteTranslator,
    bench_tflite,
    classify_file,
    generate,
    sample_next,
)
from zoo.export.signatures import InferenceModule

__all__ = [
    "ClassifierModule",
    "EXPORT_FORMAT",
    "FORMATS",
    "QUANTIZATIONS",
    "InferenceModule",
    "ParityError",
    "QualityError",
    "Seq2SeqModule",
    "TFLiteStepModel",
    "TFLiteStepper",
    "TFLiteTranslator",
    "atomic_directory",
    "bench_tflite",
    "check_out_dir",
    "check_parity",
    "classify_file",
    "convert",
    "export",
    "export_classifier",
    "export_kind",
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
