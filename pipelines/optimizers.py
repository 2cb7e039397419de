"""The optimizers and learning-rate schedule of the training loop (`--optimizer`, `--schedule`).

- `adam`: Adam (Kingma & Ba, ICLR 2015); with `--weight_decay`, AdamW's decoupled decay of every
  weight (Loshchilov & Hutter, ICLR 2019).
- `muon`: Muon (Jordan et al. 2024; Liu et al., "Muon is scalable for LLM training", 2025) for
  the hidden weight matrices: the Nesterov momentum M of the gradient is orthogonalised by five
  Newton-Schulz steps, O ~ U V^T of M = U S V^T, and W <- W - lr (0.2 sqrt(max(m, n)) O + wd W),
  an update of the same RMS as Adam's, so the same rate and decay serve. Embeddings, the output
  layer and biases take AdamW steps. `--weight_decay` decays every weight under both.
"""

from __future__ import annotations

import keras

# Variables that take AdamW steps under Muon besides embeddings and vectors: the output layer
# (every zoo model names it `logits`) and biases (a GRU's is a matrix, one row per bias).
MUON_EXCLUDED = ("logits", "bias")


def learning_rate(config, total_steps):
    """The learning rate of `config`: a float, or with `schedule="cosine"` a schedule warmed up
    linearly over `warmup_steps`, then decayed along a cosine to 1% at `total_steps`
    (Loshchilov & Hutter, "SGDR", ICLR 2017)."""
    if config.schedule != "cosine":
        return config.learning_rate
    warmup = min(config.warmup_steps, total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate,
        max(1, total_steps - warmup),
        alpha=0.01,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(config, total_steps):
    """`config.optimizer` at `learning_rate(config, total_steps)`, with `weight_decay`,
    `adam_beta2` and `clipnorm` (each gradient's norm)."""
    rate = learning_rate(config, total_steps)
    clipnorm = config.clipnorm or None
    if config.optimizer == "muon":
        decay = config.weight_decay or None
        return keras.optimizers.Muon(
            rate,
            weight_decay=decay,
            adam_weight_decay=decay,
            adam_beta_2=config.adam_beta2,
            clipnorm=clipnorm,
            exclude_layers=list(MUON_EXCLUDED),
        )
    if config.weight_decay:
        return keras.optimizers.AdamW(
            rate, weight_decay=config.weight_decay, beta_2=config.adam_beta2, clipnorm=clipnorm
        )
    return keras.optimizers.Adam(rate, beta_2=config.adam_beta2, clipnorm=clipnorm)
