"""What the int8 files compute in int8, and the edits that make them run in LiteRT."""

from __future__ import annotations

import tensorflow as tf

from zoo.export.flatbuffer import OP_NAMES
from zoo.export.fusion import FUSED_OP

# What "int8" computes in int8: the matmuls and the embedding lookup, on int8 weights and
# calibrated int8 inputs. Every other op (the gates' nonlinearities, the cell update, the
# states) stays float32: on a trained 2 x 512 character model, full-integer files lose 0.10
# bits per character (unrolled) and 4.2 (the fused op's integer kernel); this loses 0.003.
INTEGER_OPS = frozenset(
    {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL", "GATHER"}
)
FLOAT_OPS = sorted(set(OP_NAMES.values()) - INTEGER_OPS)


def int8_file(converter, integer_lstm=False) -> bytes:
    """The calibrated int8 file with the `FLOAT_OPS` left in float32 (the quantization
    debugger's denylist: TFLite's public way to quantise part of a model), less the fused
    LSTM op with `integer_lstm` (its own integer kernel)."""
    float_ops = [op for op in FLOAT_OPS if not (integer_lstm and op == FUSED_OP)]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=float_ops)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
    )
    return debugger.get_nondebug_quantized_model()


# Below this scale an int8 tensor is calibrated to the single value 0 (TFLite gives such a
# range +-1e-6).
_ZERO_RANGE_SCALE = 1e-7


def widen_zero_ranges(model) -> None:
    """Give the int8 matmul outputs of `model` (from `unpack`) calibrated to the single value
    0 the scale of one step of their inputs' product (input scale x largest weight scale).

    A matmul of an all-zero initial state (the first step of an unrolled encoder, backward
    ones after the padding too) always yields 0; calibration then gives its output a scale
    of about 1e-8, and XNNPACK, LiteRT's default CPU delegate, refuses to run an int8 matmul
    whose requantisation scale (input x weight / output scale) exceeds 256. 0 is exact at
    any scale, so the wider one changes no value."""
    codes = [OP_NAMES.get(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in model.operatorCodes]
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if codes[op.opcodeIndex] not in INTEGER_OPS - {"GATHER"}:
                continue
            output = subgraph.tensors[op.outputs[0]].quantization
            scales = [subgraph.tensors[i].quantization for i in op.inputs[:2]]
            if (
                output is None
                or output.scale is None
                or len(output.scale) != 1
                or output.scale[0] >= _ZERO_RANGE_SCALE
                or any(q is None or q.scale is None or not len(q.scale) for q in scales)
            ):
                continue
            output.scale = [float(scales[0].scale[0] * max(scales[1].scale))]
