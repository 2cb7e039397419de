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
    the uninterrupted one would have. An epoch interrupted and resumed records the training
    means of its whole `steps` batches: `partial` (`interrupted_epoch` of the interrupted
    process) holds those of the batches before the interruption.
    """

    def __init__(self, directory, summarize, history=None, patience=None, partial=None, steps=None):
        super().__init__()
        self.directory, self.summarize = directory, summarize
        self.history, self.patience = list(history or []), patience
        self.partial, self.steps = partial, steps

    def interrupted_epoch(self, step) -> dict | None:
        """{epoch, steps, logs}: the training means of the unfinished epoch at optimizer step
        `step` (None at an epoch's end), merged with `partial` when it is the same epoch."""
        epoch, done = divmod(step, self.steps)
        if not done:
            return None
        logs = {k: float(v) for k, v in self.model.get_metrics_result().items()}
        record = {"epoch": epoch + 1, "steps": done, "logs": logs}
        return self._merged(record) if self._carries(epoch + 1) else record

    def _carries(self, epoch) -> bool:
        return bool(self.partial) and self.partial.get("epoch") == epoch

    def _merged(self, record) -> dict:
        """`record` of the batches since the resume, with `partial`'s earlier ones: means
        weighted by their batch counts."""
        before, after = self.partial["steps"], record["steps"] - self.partial["steps"]
        logs = {
            k: (before * self.partial["logs"][k] + after * v) / record["steps"]
            if k in self.partial["logs"]
            else v
            for k, v in record["logs"].items()
        }
        return {**record, "logs": logs}

    @property
    def best(self):
        scored = [h for h in self.history if "val_loss" in h] or self.history
        return min(scored, key=lambda h: h.get("val_loss", h["loss"])) if scored else None

    @property
    def exhausted(self) -> bool:
        """Whether the last `patience` epochs brought no better validation loss."""
        best = self.best
        return bool(
            self.patience
            and best
            and "val_loss" in best
            and self.history[-1]["epoch"] - best["epoch"] >= self.patience
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for v in logs.values()):
            return  # the NaN guard stops the run; the previous checkpoints stay.
        if self._carries(epoch + 1):  # finished after a resume: the whole epoch's means
            trained = {k: v for k, v in logs.items() if not k.startswith("val_")}
            merged = self._merged({"steps": self.steps, "logs": trained})["logs"]
            logs = {**logs, **merged}
            self.partial = None
        previous_best = self.best
        self.history.append({"epoch": epoch + 1, **logs, **self.summarize(logs)})
        rundir.save_checkpoint(self.model, self.directory, best=self.best is not previous_best)
        rundir.write_metrics(self.directory, history=self.history, best=self.best, interrupted=None)
        if self.exhausted:
            self.model.stop_training = True
