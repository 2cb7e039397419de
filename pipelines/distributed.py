"""The training loop of MultiWorkerMirroredStrategy (Keras 3.15's `fit` cannot run it)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def fit_multi_worker(
    model,
    strategy,
    loss_fn,
    dataset,
    validation,
    *,
    epochs,
    initial_epoch,
    steps_per_epoch,
    validation_steps,
    callbacks,
):
    """`model.fit` for MultiWorkerMirroredStrategy, which Keras 3.15's fit cannot run.

    (keras-team/keras#20585: fit reduces the step results along an axis that scalars lack.)
    The same model, optimizer, loss and callbacks; gradients are all-reduced across workers
    by the optimizer; validation drops the last partial batch.
    """
    replicas = strategy.num_replicas_in_sync

    def loss_of(inputs, targets, training):
        return loss_fn(targets, model(inputs, training=training)) / replicas

    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_of(inputs, targets, True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(gradients, model.trainable_variables)
        return loss

    def distributed(step):
        return tf.function(
            lambda batch: strategy.reduce("SUM", strategy.run(step, args=batch), axis=None)
        )

    train_step = distributed(train_step)
    test_step = distributed(lambda inputs, targets: loss_of(inputs, targets, False))
    with strategy.scope():
        model(next(iter(dataset))[0])
        model.optimizer.build(model.trainable_variables)
    batches = iter(strategy.experimental_distribute_dataset(dataset))
    if validation is not None:
        batch_size = next(iter(validation))[0].shape[0]
        validation = validation.unbatch().batch(batch_size, drop_remainder=True)
        validation = strategy.experimental_distribute_dataset(
            validation.take(validation_steps or -1)
        )
    callbacks = keras.callbacks.CallbackList(
        callbacks, model=model, epochs=epochs, steps=steps_per_epoch
    )
    callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        total = 0.0
        for step in range(steps_per_epoch):
            callbacks.on_train_batch_begin(step)
            total += float(train_step(next(batches)))
            logs = {"loss": total / (step + 1)}
            callbacks.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        if validation is not None:
            logs["val_loss"] = float(np.mean([float(test_step(b)) for b in validation]))
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
