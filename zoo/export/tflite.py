"""TFLite conversion with builtin ops only, quantisation, and the list of ops a file uses."""

from __future__ import annotations

import warnings

import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from zoo.export import fused
from zoo.export.flatbuffer import pack, share_constants, unpack

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
# Ops that must never appear: loops, resource variables, and TF kernels (Flex).
FORBIDDEN_OPS = frozenset(
    {"WHILE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}
)
_OP_NAMES = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}


# What "int8" computes in int8: the matmuls and the embedding lookup, on int8 weights and
# calibrated int8 inputs. Every other op (the gates' nonlinearities, the cell update, the
# states) stays float32: on a trained 2 x 512 character model, full-integer files lose 0.10
# bits per character (unrolled) and 4.2 (the fused op's integer kernel); this loses 0.003.
INTEGER_OPS = frozenset({"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL",
                         "GATHER"})
FLOAT_OPS = sorted(set(_OP_NAMES.values()) - INTEGER_OPS)


def check_quantize(quantize: str) -> str:
    """`quantize` if it is one of QUANTIZATIONS; a ValueError listing them otherwise."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization. Expected one of {', '.join(QUANTIZATIONS)}. "
            f"Received: quantize={quantize!r}"
        )
    return quantize


def convert(module, quantize="none", representative_data=None) -> bytes:
    """The flatbuffer of `module` with builtin TFLite ops only.

    Args:
        module: the `InferenceModule` (`step`, `predict`) or `Seq2SeqModule` (`encode`,
            `decode_step`) to convert; its fused LSTM layers are completed with
            `fused.completed`.
        quantize: "none" (float32), "dynamic" (int8 weights, float activations),
            "float16" (float16 weights), or "int8" (int8 weights and int8 inputs of the
            `INTEGER_OPS`, calibrated on `representative_data`; the rest in float32).
        representative_data: real inputs for `module.calibration_samples` (int8 only):
            sequences shaped like `predict`'s `x`, or a translator's (source, target) pairs.
    """
    check_quantize(quantize)
    if quantize in ("dynamic", "int8") and not all(s.standard for s in module.fused_specs):
        raise ValueError(
            f"quantize={quantize!r} needs the fused LSTM ops as the converter makes them: build "
            "the module with fuse='standard' (peephole, CIFG, projection and layer-norm "
            "layers then run unrolled)."
        )
    signatures = module.signatures()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        list(signatures.values()), module
    )
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
                ("serving_default", inputs) for _, inputs in samples())
        else:
            converter.representative_dataset = samples
    logger, level = tf.get_logger(), tf.get_logger().level
    with warnings.catch_warnings():
        # The converter's int8 calibrator still runs tf.lite.Interpreter internally, and the
        # converter logs every temporary SavedModel it writes.
        warnings.filterwarnings("ignore", "(?s).*tf.lite.Interpreter is deprecated")
        logger.setLevel("WARNING")
        try:
            flatbuffer = (_int8(converter, _float_ops(module)) if quantize == "int8"
                          else converter.convert())
        finally:
            logger.setLevel(level)
    if quantize == "int8":  # XNNPACK-safe scales; one tensor per weight, not per step's read
        tree = unpack(flatbuffer)
        _widen_zero_ranges(tree)
        share_constants(tree)
        flatbuffer = pack(tree, len(flatbuffer))
    flatbuffer = fused.completed(flatbuffer, module.fused_specs)
    if len(signatures) == 1:  # the converter names a lone signature "serving_default"
        flatbuffer = _renamed_signature(flatbuffer, next(iter(signatures)))
    check_builtin_only(flatbuffer)
    return flatbuffer


def _float_ops(module) -> list[str]:
    """The ops an int8 file of `module` keeps in float32: `FLOAT_OPS`, less the fused LSTM op
    when the module declares `integer_lstm` (the op's own integer kernel, 8-bit weights and
    activations, 16-bit cell: judged by the caller's quality gate)."""
    if getattr(module, "integer_lstm", False):
        return [op for op in FLOAT_OPS if op != fused.FUSED_OP]
    return FLOAT_OPS


def _int8(converter, float_ops=FLOAT_OPS) -> bytes:
    """The calibrated int8 file with `float_ops` left in float32 (the quantization
    debugger's denylist: TFLite's public way to quantise part of a model)."""
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=float_ops)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset,
        debug_options=options)
    return debugger.get_nondebug_quantized_model()


# Below this scale an int8 tensor was calibrated to the single value 0 (TFLite gives such a
# range +-1e-6).
_ZERO_RANGE_SCALE = 1e-7


def _widen_zero_ranges(model) -> None:
    """Give the int8 matmul outputs of `model` (from `unpack`) calibrated to the single value
    0 the scale of one step of their inputs' product (input scale x largest weight scale).

    A matmul of an all-zero initial state (the first step of an unrolled encoder, backward
    ones after the padding too) always yields 0; calibration then gives its output a scale
    of about 1e-8, and XNNPACK, LiteRT's default CPU delegate, refuses to run an int8 matmul
    whose requantisation scale (input x weight / output scale) exceeds 256. 0 is exact at
    any scale, so the wider one changes no value."""
    codes = [_OP_NAMES.get(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in
             model.operatorCodes]
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if codes[op.opcodeIndex] not in INTEGER_OPS - {"GATHER"}:
                continue
            output = subgraph.tensors[op.outputs[0]].quantization
            scales = [subgraph.tensors[i].quantization for i in op.inputs[:2]]
            if (output is None or output.scale is None or len(output.scale) != 1
                    or output.scale[0] >= _ZERO_RANGE_SCALE
                    or any(q is None or q.scale is None or not len(q.scale) for q in scales)):
                continue
            output.scale = [float(scales[0].scale[0] * max(scales[1].scale))]


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
        codes.append(custom.decode() if custom else _OP_NAMES.get(builtin, str(builtin)))
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
