"""An attentional encoder-decoder (translator) over any registered cell."""

from __future__ import annotations

import keras
from keras import ops

from zoo import cells, decoding
from zoo.cells.base import check_units
from zoo.layers import sequence_layer
from zoo.layers.recurrent import stack_step
from zoo.models.protocol import EncoderDecoder
from zoo.registry import ATTENTIONS

# Named sizes. Data, not code: a size is a dict of `Seq2Seq` arguments.
SIZES = {
    "tiny": {"embedding_dim": 16, "units": 32, "encoder_layers": 1, "decoder_layers": 1},
    "small": {"embedding_dim": 128, "units": 256, "encoder_layers": 1, "decoder_layers": 1},
    "medium": {"embedding_dim": 256, "units": 512, "encoder_layers": 2, "decoder_layers": 2},
}


@keras.saving.register_keras_serializable(package="zoo")
class Seq2Seq(keras.Model, EncoderDecoder):
    """Encoder-decoder with global attention (Luong et al. 2015), any cell in both halves.

        h_s = Encoder(x)_s                       embedding + stacked (bi)directional layers
        s_0 = tanh(W_0 · mean_s h_s)             decoder initial states (Sennrich et al. 2017)
        d_t = Decoder(y_{t-1}, d_{t-1})          embedding + stacked layers, teacher forcing
        c_t = Σ_s softmax_s(score(d_t, h_s)) h_s  Bahdanau (additive) or Luong (general) score
        p(y_t | y_<t, x) = softmax(W_y [d_t; c_t] + b_y)

    (Luong et al. put a tanh layer before W_y; on this CPU-sized setting it slowed early
    learning markedly - 4.93 against 5.38 nats after 150 steps - so the readout is linear.)

    Token id 0 is padding: it is masked in the encoder, the attention and the bridge. The
    attention reads the decoder's output, so training runs each layer over the whole target
    at once (no input feeding); decoding (`generate`) runs `decode_step` in a graph loop.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes (id 0 = padding).
        cell: name of a registered cell (`zoo.cells.names()`).
        units: hidden size of every recurrent layer (per direction in the encoder).
        encoder_layers, decoder_layers: stacked recurrent layers.
        embedding_dim: width of the token embeddings.
        bidirectional: bidirectional encoder layers.
        attention: a registered attention: "luong", "scaled_luong" (scores / sqrt(units)) or
            "bahdanau".
        dropout: dropout on embeddings, between layers and before the output layer.
        cell_kwargs: extra arguments of the cell (e.g. `{"reset_after": False}`).

    Example:
        model = Seq2Seq(8000, 8000, cell="gru", attention="bahdanau")
        logits = model((source_ids, target_in_ids))             # (batch, time, vocab)
        ids, scores = model.generate(source_ids, start_id=2, end_id=3, beam_size=4)

    Papers: I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to Sequence Learning with Neural
    Networks", NeurIPS 2014; D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by
    Jointly Learning to Align and Translate", ICLR 2015; M.-T. Luong, H. Pham, C. D. Manning,
    "Effective Approaches to Attention-based Neural Machine Translation", EMNLP 2015;
    R. Sennrich et al., "Nematus: a Toolkit for Neural Machine Translation", EACL 2017.
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        cell="lstm",
        units=256,
        encoder_layers=1,
        decoder_layers=1,
        embedding_dim=128,
        bidirectional=True,
        attention="luong",
        dropout=0.0,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("source_vocab_size", source_vocab_size),
            ("target_vocab_size", target_vocab_size),
            ("units", units),
            ("encoder_layers", encoder_layers),
            ("decoder_layers", decoder_layers),
            ("embedding_dim", embedding_dim),
        ):
            check_units(name, value)
        if attention not in ATTENTIONS:
            raise ValueError(
                f"Argument `attention` must be one of {ATTENTIONS.names()}. "
                f"Received: attention={attention!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout}")
        cells.get(cell)  # a clear error listing the known cells
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.cell, self.units, self.embedding_dim = cell, units, embedding_dim
        self.encoder_layers, self.decoder_layers = encoder_layers, decoder_layers
        self.bidirectional, self.attention_kind = bool(bidirectional), attention
        self.dropout_rate, self.cell_kwargs = dropout, dict(cell_kwargs or {})

        def new_cell():
            return cells.create(cell, units, **self.cell_kwargs)

        self.source_embedding = keras.layers.Embedding(
            source_vocab_size, embedding_dim, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocab_size, embedding_dim, name="target_embedding"
        )
        self.encoder = [
            sequence_layer(new_cell(), bidirectional=self.bidirectional, name=f"encoder_{i}")
            for i in range(encoder_layers)
        ]
        self.decoder = [
            sequence_layer(new_cell(), name=f"decoder_{i}") for i in range(decoder_layers)
        ]
        self.bridge = [
            [
                keras.layers.Dense(size, activation="tanh", name=f"bridge_{i}_{j}")
                for j, size in enumerate(_sizes(layer.cell.state_size))
            ]
            for i, layer in enumerate(self.decoder)
        ]
        self.attention = ATTENTIONS.get(attention)(units, name="attention")
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        # float32 logits keep the softmax stable under mixed precision.
        self.head = keras.layers.Dense(target_vocab_size, dtype="float32", name="logits")

    def build(self, input_shape=None):
        """Create every weight by running a dummy pair through the model."""
        tokens = ops.ones((1, 2), "int32")
        self.forward(tokens, tokens)
        self.built = True

    # -- encoder -------------------------------------------------------------------------------
    def encode(self, source, training=False):
        """What the decoder needs from a source batch (batch, source_time) of ids: a dict of
        `memory` (encoder outputs), `keys` (attention keys), `mask` and initial `states`."""
        mask = ops.not_equal(source, 0)
        x = self.dropout(self.source_embedding(source), training=training)
        for layer in self.encoder:
            x = self.dropout(layer(x, mask=mask, training=training), training=training)
        weights = ops.cast(mask, x.dtype)[:, :, None]
        mean = ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        states = [[dense(mean) for dense in layer] for layer in self.bridge]
        return {"memory": x, "keys": self.attention.keys(x), "mask": mask, "states": states}

    # -- decoder -------------------------------------------------------------------------------
    def readout(self, outputs, encoded, training=False):
        """Logits and attention weights from decoder outputs (batch, [time,] units)."""
        context, weights = self.attention(
            outputs, encoded["memory"], encoded["mask"], keys=encoded["keys"]
        )
        hidden = ops.concatenate([outputs, ops.cast(context, outputs.dtype)], -1)
        return self.head(self.dropout(hidden, training=training)), weights

    def decode_step(self, ids, encoded, attention=False):
        """One decoding step: ids (batch,) and `encode`'s dict (with the current `states`)
        -> logits (batch, vocab) and the dict with the new states (and, with `attention`,
        the attention weights over the source (batch, source_time))."""
        x, states = stack_step(self.decoder, self.target_embedding(ids), encoded["states"])
        logits, weights = self.readout(x, encoded)
        encoded = {**encoded, "states": states}
        return (logits, encoded, weights) if attention else (logits, encoded)

    def forward(self, source, target_in, training=False):
        """Teacher-forced logits (batch, target_time, vocab) and attention weights
        (batch, target_time, source_time)."""
        encoded = self.encode(source, training=training)
        mask = ops.not_equal(target_in, 0)
        x = self.dropout(self.target_embedding(target_in), training=training)
        for i, (layer, state) in enumerate(zip(self.decoder, encoded["states"])):
            x = layer(x, initial_state=state, mask=mask, training=training)
            if i + 1 < len(self.decoder):
                x = self.dropout(x, training=training)
        return self.readout(x, encoded, training=training)

    def call(self, inputs, training=False):
        source, target_in = inputs
        return self.forward(source, target_in, training=training)[0]

    # -- generation ----------------------------------------------------------------------------
    def generate(self, source, start_id, end_id, max_length=100, beam_size=1, length_penalty=0.0):
        """Translations of a batch of source ids, in graph mode.

        Returns (ids, scores): (batch, max_length) ids ending with `end_id` and padded with 0,
        and their log-probabilities (length-normalised in beam search). `beam_size=1` is
        greedy decoding.
        """
        check_units("beam_size", beam_size)
        check_units("max_length", max_length)
        if not self.built:
            self.build()
        key = (int(start_id), int(end_id), max_length, beam_size, float(length_penalty))
        if key not in self._generators:
            self._generators[key] = _compile(lambda source: self.search(source, *key))
        ids, scores = self._generators[key](ops.convert_to_tensor(source, "int32"))
        return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)

    @property
    def _generators(self):
        if "_generator_cache" not in self.__dict__:
            self.__dict__["_generator_cache"] = {}
        return self.__dict__["_generator_cache"]

    def search(self, source, start_id, end_id, max_length, beam_size=1, length_penalty=0.0):
        """`generate`'s search as a traceable function of source ids: (ids, scores)."""
        encoded = self.encode(source)
        start = ops.full((ops.shape(source)[0],), start_id, "int32")
        if beam_size == 1:
            return decoding.greedy_search(self.decode_step, encoded, start, end_id, max_length)
        return decoding.beam_search(
            self.decode_step,
            encoded,
            start,
            end_id,
            max_length,
            beam_size=beam_size,
            length_penalty=length_penalty,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            cell=self.cell,
            units=self.units,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            embedding_dim=self.embedding_dim,
            bidirectional=self.bidirectional,
            attention=self.attention_kind,
            dropout=self.dropout_rate,
            cell_kwargs=self.cell_kwargs,
        )
        return config


def _sizes(state_size):
    return list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]


def _compile(fn):
    """`fn(ids)` as a graph function of any (batch, time) on the TensorFlow backend."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.int32)])
    return fn


def from_size(size, source_vocab_size, target_vocab_size, **overrides):
    """A `Seq2Seq` of the named size; `overrides` replace any of its arguments."""
    if size not in SIZES:
        raise KeyError(f"Unknown size {size!r}. Known sizes: {', '.join(SIZES)}")
    return Seq2Seq(source_vocab_size, target_vocab_size, **{**SIZES[size], **overrides})
