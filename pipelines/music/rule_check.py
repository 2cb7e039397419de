"""The rule-check table: Bach's held-out chorales beside a harmony model's harmonisations.

    python -m pipelines.music.rule_check --preset=harmony_lstm --temperatures=1.0,0.5

harmonises the soprano of every held-out (test) Bach chorale with a `harmony` model (its
fermatas given), by the model alone and under the voice-leading rules
(`harmony.voice_leading_rules`; `--norules` leaves those out), and prints in markdown the
statistics of `pipelines.music.voice_leading` for Bach's own chorales beside those of the
harmonisations (and with `--free`, of chorales the model writes from nothing), with the wall and
process CPU time of the drawing.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from pipelines.music.voice_leading import STEPS_PER_QUARTER, statistics, table


def harmonisations(model, pieces, temperature, samples=1, seed=0, steps_per_quarter=1, rules=False):
    """(grids, fermatas): `samples` harmonisations of the soprano of each (grid, fermata) piece
    by a `harmony` model, the fermatas given (seeds seed, seed + 1, ... in piece order);
    `rules`: drawn under the voice-leading rules (`harmony.voice_leading_rules`)."""
    from pipelines.music.harmony import harmonize

    grids, fermatas = [], []
    for index, (grid, fermata) in enumerate(pieces):
        for sample in range(samples):
            draw = seed + index * samples + sample
            melody = np.asarray(grid)[:, 0]
            grids.append(
                harmonize(model, melody, fermata, steps_per_quarter, temperature, draw, rules)
            )
            fermatas.append(fermata)
    return grids, fermatas


def free_chorales(model, lengths, temperature, seed=0, steps_per_quarter=1):
    """(grids, fermatas) per 16th note of chorales a `harmony` model writes from nothing, one
    per length (in 16th notes), its own fermatas included."""
    from zoo.models.harmony import VOICE_COUNT, fill_chorale

    stride = STEPS_PER_QUARTER // steps_per_quarter
    grids, fermatas = [], []
    for index, length in enumerate(lengths):
        template = np.full((-(-length // stride), VOICE_COUNT + 1), -1)
        tokens = fill_chorale(model, template, temperature, seed + index)[0]
        grid, held = model.vocabulary.decode(tokens)
        grids.append(np.repeat(grid, stride, axis=0)[:length])
        fermatas.append(np.repeat(held, stride)[:length])
    return grids, fermatas


def _load(preset, run_dir):
    """(model, config) of a `harmony` run directory or preset, as `lstm-zoo sample` loads it."""
    from pipelines import presets, rundir

    if bool(preset) == bool(run_dir):
        raise ValueError("give --preset=NAME or --run_dir=DIR (one of them)")
    if preset:
        presets.check_dataset(preset)
        run_dir = presets.run_dir(preset)
    config = rundir.load_config(run_dir)
    if config.task != "harmony":
        raise ValueError(f"{preset or run_dir} is a {config.task} model, not a harmony model")
    return rundir.load_checkpoint(run_dir), config


def rule_check(
    preset=None,
    run_dir=None,
    temperatures=(0.5,),
    samples=1,
    seed=0,
    limit=None,
    free=False,
    steps_per_quarter=4,
    rules=True,
):
    """The markdown rule-check table of the held-out Bach chorales beside a harmony model's
    harmonisations of their sopranos at each temperature (with `rules`, also drawn under the
    voice-leading rules; with `free`, chorales of the same lengths drawn from nothing at the
    first temperature), and a line with the wall and process CPU time of the drawing."""
    from pipelines import datasets

    model, config = _load(preset, run_dir)
    pieces = [
        (np.asarray(p["grid"]), np.asarray(p["fermata"]))
        for p in list(datasets.examples("zoo_bach_chorales", "test"))[:limit]
    ]
    name = preset or run_dir
    grids, fermatas = zip(*pieces)
    columns = {"Bach, held-out": statistics(grids, fermatas, steps_per_quarter)}
    wall, cpu = time.monotonic(), time.process_time()
    spq = config.steps_per_quarter
    for temperature in temperatures:
        for guided in (False, True) if rules else (False,):
            drawn = harmonisations(model, pieces, temperature, samples, seed, spq, guided)
            title = f"{name}{' + rules' if guided else ''}, T={temperature:g}"
            columns[title] = statistics(*drawn, steps_per_quarter)
    if free:
        lengths = [len(grid) for grid in grids for _ in range(samples)]
        drawn = free_chorales(model, lengths, temperatures[0], seed, spq)
        columns[f"{name} free, T={temperatures[0]:g}"] = statistics(*drawn, steps_per_quarter)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    return (
        f"{table(columns)}\n\n{len(pieces)} test chorales x {samples} sample(s) x "
        f"{len(columns) - 1} column(s) drawn in {wall:.1f} s wall, {cpu:.1f} s CPU; "
        f"read at {steps_per_quarter} frame(s) per quarter note"
    )


def main(argv=None):
    """`python -m pipelines.music.rule_check` (see the module docstring)."""
    from absl import flags

    from pipelines import terminal, threads

    values = flags.FlagValues()
    flags.DEFINE_string("preset", None, "A trained harmony preset.", flag_values=values)
    flags.DEFINE_string("run_dir", None, "A harmony run directory.", flag_values=values)
    flags.DEFINE_list(
        "temperatures", ["0.5"], "Sampling temperatures, one column each.", flag_values=values
    )
    flags.DEFINE_integer("samples", 1, "Harmonisations per chorale.", 1, flag_values=values)
    flags.DEFINE_integer("seed", 0, "Seed of the first draw.", flag_values=values)
    flags.DEFINE_integer("limit", None, "Only the first N test chorales.", 1, flag_values=values)
    flags.DEFINE_boolean("free", False, "Add chorales drawn from nothing.", flag_values=values)
    flags.DEFINE_boolean(
        "rules", True, "Add harmonisations drawn under the rules.", flag_values=values
    )
    flags.DEFINE_integer(
        "steps_per_quarter",
        4,
        "Frames read per quarter note: 4 (every 16th), 2 or 1.",
        flag_values=values,
    )
    prog = "python -m pipelines.music.rule_check"
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"--help", "-h"} & set(argv):
        print(f"usage: {prog} --preset=NAME | --run_dir=DIR [flags]\n\n{values}")
        return
    try:
        rest = values([prog, *argv])
        if len(rest) > 1:
            raise ValueError(f"takes flags only; received {' '.join(rest[1:])}")
        temperatures = []
        for text in values.temperatures:
            try:
                temperatures.append(float(text))
            except ValueError:
                raise ValueError(f"--temperatures: {text!r} is not a number") from None
            if temperatures[-1] < 0:
                raise ValueError(f"--temperatures: {text} is negative")
        if not temperatures:
            raise ValueError("--temperatures is empty")
        with terminal.quiet_native_logs():
            threads.import_tensorflow()
            report = rule_check(
                values.preset,
                values.run_dir,
                temperatures,
                values.samples,
                values.seed,
                values.limit,
                values.free,
                values.steps_per_quarter,
                values.rules,
            )
    except (flags.Error, ValueError, KeyError, OSError) as error:
        message = str(error.args[0] if isinstance(error, KeyError) else error).strip()
        sys.exit(f"{prog}: error: {message.splitlines()[0]}")
    print(report)


if __name__ == "__main__":
    main()
