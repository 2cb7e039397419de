"""TFLite conversion with builtin ops only (quantised as `quantization` says), and the ops a
file uses."""

from __future__ import annotations

import warnings

import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from zoo.export import fusion
from zoo.export.flatbuffer import OP_NAMES, pack, share_constants, unpack
from zoo.export.quantization import int8_file, widen_zero_ranges

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
# Ops that must never appear: loops, resource variables, and TF kernels (Flex).
FORBIDDEN_OPS = frozenset({"WHILE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})


def check_quantize(quantize: str) -> str:
    """`quantize` if it is one of QUANTIZATIONS; a ValueError listing them otherwise."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization. Expected one of {', '.join(QUANTIZATIONS)}. "
            f"Received: quantize={quantize!r}"
        )
    return quantize


def convert(module, quantize="none", representative_data=None, integer_lstm=False) -> bytes:
    """The flatbuffer of `module` with builtin TFLite ops only.

    Args:
        module: the `InferenceModule` (`step`, `predict`) or `Seq2SeqModule` (`encode`,
            `decode_step`) to convert; its fused LSTM layers are completed with
            `fusion.completed`.
        quantize: "none" (float32), "dynamic" (int8 weights, float activations),
            "float16" (float16 weights), or "int8" (int8 weights and int8 inputs of the
            `quantization.INTEGER_OPS`, calibrated on `representative_data`; the rest in
            float32).
        representative_data: real inputs for `module.calibration_samples` (int8 only):
            sequences shaped like `predict`'s `x`, or a translator's (source, target) pairs.
        integer_lstm: int8 only: the fused LSTM ops run in the op's integer kernel (8-bit
            weights and activations, 16-bit cell) rather than in float32, for a file whose
            fused layers read whole windows (the caller's quality gate judges it).
    """
    check_quantize(quantize)
    if quantize in ("dynamic", "int8") and not all(s.standard for s in module.fused_specs):
        raise ValueError(
            f"quantize={quantize!r} needs the fused LSTM ops as the converter makes them: build "
            "the module with fuse='standard' (peephole, CIFG, projection and layer-norm "
            "layers then run unrolled)."
        )
    signatures = module.signatures()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(list(signatures.values()), module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative_data is None:
            raise ValueError(
                "quantize='int8' calibrates on real inputs: pass representative_data "
                "(see `calibration_samples` of the module). Received: representative_data=None"
            )
        samples = module.calibration_samples(representative_data)
        if len(signatures) == 1:  # the converter's name for it, until `_renamed_signature`
            converter.representative_dataset = lambda: (
                ("serving_default", inputs) for _, inputs in samples()
            )
        else:
            converter.representative_dataset = samples
    logger, level = tf.get_logger(), tf.get_logger().level
    with warnings.catch_warnings():
        # The converter's int8 calibrator still runs tf.lite.Interpreter internally, and the
        # converter logs every temporary SavedModel it writes.
        warnings.filterwarnings("ignore", "(?s).*tf.lite.Interpreter is deprecated")
        logger.setLevel("WARNING")
        try:
            flatbuffer = (
                int8_file(converter, integer_lstm) if quantize == "int8" else converter.convert()
            )
        finally:
            logger.setLevel(level)
    if quantize == "int8":  # XNNPACK-safe scales; one tensor per weight, not per step's read
        tree = unpack(flatbuffer)
        widen_zero_ranges(tree)
        share_constants(tree)
        flatbuffer = pack(tree, len(flatbuffer))
    flatbuffer = fusion.completed(flatbuffer, module.fused_specs)
    if len(signatures) == 1:  # the converter names a lone signature "serving_default"
        flatbuffer = _renamed_signature(flatbuffer, next(iter(signatures)))
    check_builtin_only(flatbuffer)
    return flatbuffer


def _renamed_signature(flatbuffer: bytes, name: str) -> bytes:
    """`flatbuffer` whose only signature is called `name`."""
    model = unpack(flatbuffer)
    model.signatureDefs[0].signatureKey = name.encode()
    return pack(model, len(flatbuffer))


def ops_used(flatbuffer: bytes) -> list[str]:
    """Sorted names of the ops in every subgraph of a .tflite flatbuffer."""
    model = schema.Model.GetRootAs(flatbuffer, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else OP_NAMES.get(builtin, str(builtin)))
    used = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            used.add(codes[subgraph.Operators(o).OpcodeIndex()])
    return sorted(used)


def check_builtin_only(flatbuffer: bytes) -> None:
    """Raise if the file holds custom/Flex ops, loops or resource variables."""
    model = schema.Model.GetRootAs(flatbuffer, 0)
    custom = [
        model.OperatorCodes(i).CustomCode().decode()
        for i in range(model.OperatorCodesLength())
        if model.OperatorCodes(i).CustomCode()
    ]
    bad = sorted(set(custom) | (set(ops_used(flatbuffer)) & FORBIDDEN_OPS))
    if bad:
        raise RuntimeError(
            f"The TFLite conversion produced ops a mobile runtime cannot run: {', '.join(bad)}"
        )
