"""Callbacks of the training loop: the NaN guard and the run directory's checkpoints."""

from __future__ import annotations

import math

import keras

from pipelines import rundir


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.epoch, self.failure = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = f"epoch {self.epoch + 1}, batch {batch + 1} (loss={float(loss)})"
            self.model.stop_training = True


class RunCheckpoint(keras.callbacks.Callback):
    """After each finite epoch, atomically write last.keras, best.keras and metrics.json.

    With `patience`, training stops once that many epochs passed without a better validation
    loss (early stopping). The decision reads the run's history, so a resumed run stops where
    the uninterrupted one would have.
    """

    def __init__(self, directory, summarize, history=None, patience=None):
        super().__init__()
        self.directory, self.summarize = directory, summarize
        self.history, self.patience = list(history or []), patience

    @property
    def best(self):
        scored = [h for h in self.history if "val_loss" in h] or self.history
        return min(scored, key=lambda h: h.get("val_loss", h["loss"])) if scored else None

    @property
    def exhausted(self) -> bool:
        """Whether the last `patience` epochs brought no better validation loss."""
        best = self.best
        return bool(self.patience and best and "val_loss" in best
                    and self.history[-1]["epoch"] - best["epoch"] >= self.patience)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for v in logs.values()):
            return  # the NaN guard stops the run; the previous checkpoints stay.
        previous_best = self.best
        self.history.append({"epoch": epoch + 1, **logs, **self.summarize(logs)})
        rundir.save_checkpoint(self.model, self.directory, best=self.best is not previous_best)
        rundir.write_metrics(self.directory, history=self.history, best=self.best)
        if self.exhausted:
            self.model.stop_training = True
