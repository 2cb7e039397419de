"""TFLite conversion with builtin ops only, quantisation, and the list of ops a file uses."""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from zoo.export import fused
from zoo.export.flatbuffer import pack, unpack

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
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization. Expected one of {', '.join(QUANTIZATIONS)}. "
            f"Received: quantize={quantize!r}"
        )
    return quantize


def representative_samples(module, sequences):
    """Calibration samples for both signatures, drawn from real input sequences.

    Each sequence (B, T) of `sequences` feeds `step` at every position with the states the
    model really reaches there, and `predict` once from the states the previous sequence
    ended in (all-zero initial states would calibrate the state inputs to a zero range), so
    that the int8 ranges of the state tensors are those seen in use.
    """

    def generate():
        carried = module.zero_states()
        for sequence in sequences:
            sequence = np.asarray(sequence)
            yield "predict", {"x": sequence, **carried}
            if not module.streaming:
                continue
            states = module.zero_states()
            for t in range(sequence.shape[1]):
                inputs = {"x": sequence[:, t], **states}
                yield "step", inputs
                outputs = module.run("step", inputs)
                states = {name: outputs[name].numpy() for name in states}
            carried = states

    return generate


def convert(module, quantize="none", representative_data=None) -> bytes:
    """The flatbuffer of `module` (an `InferenceModule`) with builtin TFLite ops only.

    Args:
        module: the `InferenceModule` to convert (its `step` and `predict` signatures);
            its fused LSTM layers are completed with `fused.completed`.
        quantize: "none" (float32), "dynamic" (int8 weights, float activations),
            "float16" (float16 weights), or "int8" (int8 weights and int8 inputs of the
            `INTEGER_OPS`, calibrated on `representative_data`; the rest in float32).
        representative_data: iterable of input sequences shaped like `predict`'s `x`.
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
                "(sequences shaped like the `predict` input). Received: representative_data=None"
            )
        converter.representative_dataset = representative_samples(module, representative_data)
    logger, level = tf.get_logger(), tf.get_logger().level
    with warnings.catch_warnings():
        # The converter's int8 calibrator still runs tf.lite.Interpreter internally, and the
        # converter logs every temporary SavedModel it writes.
        warnings.filterwarnings("ignore", "(?s).*tf.lite.Interpreter is deprecated")
        logger.setLevel("WARNING")
        try:
            flatbuffer = _int8(converter) if quantize == "int8" else converter.convert()
        finally:
            logger.setLevel(level)
    flatbuffer = fused.completed(flatbuffer, module.fused_specs)
    if len(signatures) == 1:  # the converter names a lone signature "serving_default"
        flatbuffer = _renamed_signature(flatbuffer, next(iter(signatures)))
    check_builtin_only(flatbuffer)
    return flatbuffer


def _int8(converter) -> bytes:
    """The calibrated int8 file with the `FLOAT_OPS` left in float32 (the quantization
    debugger's denylist: TFLite's public way to quantise part of a model)."""
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_OPS)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset,
        debug_options=options)
    return debugger.get_nondebug_quantized_model()


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
