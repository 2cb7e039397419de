"""Voice-leading and harmony statistics of SATB grids: a rule-check table beside Bach's.

    python -m pipelines.music.voice_leading --preset=harmony_lstm --temperatures=1.0,0.5

harmonises the soprano of every held-out (test) Bach chorale with a `harmony` model (its
fermatas given), by the model alone and under the rules below (`harmony.voice_leading_rules`;
`--norules` leaves those out), and prints in markdown the statistics of Bach's own chorales
beside those of the harmonisations (and with `--free`, of chorales written from nothing).

A grid is (steps, 4) MIDI pitches per 16th note, soprano, alto, tenor, bass, 0 a rest. The
statistics are read on a frame of `steps_per_quarter` onsets per quarter note: 4 (the default)
reads every 16th, so every note as heard; 1 reads the pitch each voice sounds at the start of
each beat (the model's own resolution), where Bach's passing eighths are not read and fifths
they break up count as parallels. A *chord change* is a frame in which any voice's pitch
differs from the frame before, and the *chords* are the first frame and every chord change
(repeated frames collapse into one chord). A silence (every voice resting) is not counted as a
chord, and no transition crosses it: the rules read the chords and the transitions between
successive sounding chords.
The rules, each counted over the chords or over the transitions between successive chords:

- *Parallel fifths / octaves*: for every pair of voices sounding in both chords, both voices
  move (neither holds) in the same direction and the interval between them, |upper - lower|
  mod 12, is 7 in both chords (a perfect fifth or compound fifth: 7, 19, 31) or 0 in both (a
  unison, octave or compound octave: unisons count as octaves). A perfect fifth to a diminished
  fifth (7 -> 6), contrary and oblique motion, and hidden (direct) fifths are not counted. Each
  voice pair counts once per transition; the rate is per 100 transitions (chord changes).
- *Voice crossing*: in a chord, a lower voice sounds above a higher one (alto above soprano,
  bass above tenor, ...; a unison is not a crossing); the share of chords with any crossing.
- *Range*: a sounding note outside its voice's textbook range (`RANGES`: soprano C4-G5,
  alto G3-D5, tenor C3-G4, bass E2-C4); the share of the chords' sounding notes.
- *Chord quality*, over chords whose four voices all sound: the pitch-class set (doublings
  allowed) is a complete triad (`TRIADS`), a complete seventh chord (`SEVENTHS`), one of those
  with its fifth omitted (`FIFTH_OMITTED`: the one member a textbook lets a four-voice chord
  drop), or none of these (non-chord tones, open fifths, clusters).
- *Cadence at a fermata*: the cadence chord is the last chord of each run of successive chords
  under a fermata (a fermata anywhere in a chord's frames puts it under one). It is a
  root-position triad when it is a major or minor triad (fifth may be omitted) whose bass is
  the root; an authentic cadence when, besides, the chord before it is a root-position major
  triad or dominant seventh (fifth may be omitted) whose root lies a fifth above (V(7)-I).
"""

from __future__ import annotations

import sys
import time
from itertools import combinations

import numpy as np

VOICES = ("soprano", "alto", "tenor", "bass")
RANGES = {"soprano": (60, 79), "alto": (55, 74), "tenor": (48, 67), "bass": (40, 60)}
TRIADS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}
SEVENTHS = {
    "dominant seventh": (0, 4, 7, 10),
    "minor seventh": (0, 3, 7, 10),
    "half-diminished seventh": (0, 3, 6, 10),
    "diminished seventh": (0, 3, 6, 9),
    "major seventh": (0, 4, 7, 11),
}
FIFTH_OMITTED = {
    "major": (0, 4),
    "minor": (0, 3),
    "dominant seventh": (0, 4, 10),
    "minor seventh": (0, 3, 10),
    "major seventh": (0, 4, 11),
}
STEPS_PER_QUARTER = 4  # the grids' resolution: 16th notes


def chords(grid, fermata=None, steps_per_quarter=4):
    """(chords (n, 4), under_fermata (n,)) of a 16th-note SATB grid read at
    `steps_per_quarter` onsets per quarter note: repeated frames collapsed into one chord,
    which is under a fermata when any of its frames is (silences, all voices 0, included)."""
    if steps_per_quarter not in (1, 2, 4):
        raise ValueError(f"`steps_per_quarter` must be 1, 2 or 4. Received: {steps_per_quarter}")
    stride = STEPS_PER_QUARTER // steps_per_quarter
    grid = np.asarray(grid, np.int64).reshape(-1, len(VOICES))
    held = np.zeros(len(grid), bool) if fermata is None else np.asarray(fermata, bool)
    if len(held) != len(grid):
        raise ValueError(f"{len(held)} fermata flags for a grid of {len(grid)} steps")
    frames = grid[::stride]
    held = np.pad(held, (0, -len(held) % stride)).reshape(-1, stride).any(1)
    if not len(frames):
        return frames, held
    change = np.concatenate([[True], (frames[1:] != frames[:-1]).any(1)])
    chord_of_frame = np.cumsum(change) - 1
    under = np.zeros(int(change.sum()), bool)
    np.logical_or.at(under, chord_of_frame, held)
    return frames[change], under


def parallels(chords_):
    """(fifths, octaves): parallel perfect fifths and octaves (unisons and compound intervals
    included) between any two voices over the transitions of `chords_` (n, 4), counted once per
    voice pair and transition (see the module docstring)."""
    before, after = chords_[:-1], chords_[1:]
    fifths = octaves = 0
    for upper, lower in combinations(range(chords_.shape[1]), 2):
        sounding = (before[:, [upper, lower]] > 0).all(1) & (after[:, [upper, lower]] > 0).all(1)
        up, low = after[:, upper] - before[:, upper], after[:, lower] - before[:, lower]
        similar = sounding & (np.sign(up) == np.sign(low)) & (up != 0)
        was = np.abs(before[:, upper] - before[:, lower]) % 12
        now = np.abs(after[:, upper] - after[:, lower]) % 12
        fifths += int((similar & (was == 7) & (now == 7)).sum())
        octaves += int((similar & (was == 0) & (now == 0)).sum())
    return fifths, octaves


def crossed(chords_):
    """Boolean (n,): the chords in which a lower voice sounds above a higher one."""
    out = np.zeros(len(chords_), bool)
    for upper, lower in combinations(range(chords_.shape[1]), 2):
        out |= (
            (chords_[:, lower] > 0)
            & (chords_[:, upper] > 0)
            & (chords_[:, lower] > chords_[:, upper])
        )
    return out


def out_of_range(chords_):
    """Boolean (n, 4): sounding notes outside their voice's range in `RANGES`."""
    low = np.array([RANGES[v][0] for v in VOICES])
    high = np.array([RANGES[v][1] for v in VOICES])
    return (chords_ > 0) & ((chords_ < low) | (chords_ > high))


def quality(pitches):
    """(kind, name, root pitch class) of a chord's sounding MIDI pitches: kind "triad",
    "seventh", "fifth omitted" or "other" (name and root None), from its pitch-class set."""
    classes = {int(p) % 12 for p in pitches if p > 0}
    for kind, shapes in (
        ("triad", TRIADS),
        ("seventh", SEVENTHS),
        ("fifth omitted", FIFTH_OMITTED),
    ):
        for root in sorted(classes):
            intervals = tuple(sorted((c - root) % 12 for c in classes))
            for name, shape in shapes.items():
                if intervals == shape:
                    return kind, name, root
    return "other", None, None


def _root_position(pitches, names):
    """The root of a chord named in `names` (complete or fifth omitted) with its bass on the
    root, else None."""
    kind, name, root = quality(pitches)
    bass = pitches[-1]
    if kind != "other" and name in names and bass > 0 and bass % 12 == root:
        return root
    return None


def cadences(chords_, under):
    """(cadences, root-position triads, authentic): counts over the cadence chords of one
    chorale (the last chord of each run of chords under a fermata)."""
    ends = np.flatnonzero(under & ~np.append(under[1:], False))
    tonic = authentic = 0
    for end in ends:
        root = _root_position(chords_[end], ("major", "minor"))
        if root is None:
            continue
        tonic += 1
        if end > 0:
            dominant = _root_position(chords_[end - 1], ("major", "dominant seventh"))
            authentic += dominant is not None and (dominant - root) % 12 == 7
    return len(ends), tonic, authentic


def allowed_pitches(before, chord, voice, candidates):
    """Boolean (batch, len(candidates)): the `candidates` (MIDI pitches, 0 a rest) that `voice`
    (1 alto .. 3 bass) may take under the voices above it in `chord` (batch, >= voice), coming
    from the chords `before` (batch, 4; None for the first): inside its range, under (or in
    unison with) every voice above, and in no parallel fifth or octave with one of them. A rest
    is always allowed. The rules are the statistics' (see the module docstring)."""
    chord, candidates = np.asarray(chord)[:, :voice, None], np.asarray(candidates)[None, :]
    low, high = RANGES[VOICES[voice]]
    sounding = candidates > 0
    ok = ~sounding | ((candidates >= low) & (candidates <= high))
    ok &= ~sounding | ((chord <= 0) | (candidates <= chord)).all(1)
    if before is not None:
        before = np.asarray(before)[:, :, None]
        moves = np.sign(candidates - before[:, voice])
        for upper in range(voice):
            was = np.abs(before[:, upper] - before[:, voice]) % 12
            now = np.abs(chord[:, upper] - candidates) % 12
            similar = (np.sign(chord[:, upper] - before[:, upper]) == moves) & (moves != 0)
            held = (before[:, upper] > 0) & (before[:, voice] > 0) & (chord[:, upper] > 0)
            ok &= ~(similar & held & sounding & (was == now) & ((now == 0) | (now == 7)))
    return ok


def _rate(part, whole):
    """100 part / whole, NaN for nothing to count."""
    return 100.0 * part / whole if whole else float("nan")


def statistics(grids, fermatas=None, steps_per_quarter=4):
    """The rule-check statistics of SATB grids (16th notes) pooled over every grid: counts and
    rates (see the module docstring), as a dict. `fermatas`: per-grid flags, or None."""
    fermatas = [None] * len(grids) if fermatas is None else fermatas
    counts = dict.fromkeys(
        ("pieces", "chords", "changes", "fifths", "octaves", "crossed", "notes", "outside"), 0
    )
    counts.update(dict.fromkeys(("rests", "full", "cadences", "tonic", "authentic"), 0))
    kinds = dict.fromkeys(("triad", "seventh", "fifth omitted", "other"), 0)
    for grid, fermata in zip(grids, fermatas):
        found, under = chords(grid, fermata, steps_per_quarter)
        fifths, octaves = parallels(found)
        cadence_counts = cadences(found, under)
        sounding = (found > 0).any(1)
        changes = (sounding[1:] & sounding[:-1]).sum()
        found = found[sounding]
        full = (found > 0).all(1)
        for pitches in found[full]:
            kinds[quality(pitches)[0]] += 1
        for key, value in zip(
            counts,
            (1, len(found), changes, fifths, octaves, crossed(found).sum(), (found > 0).sum())
            + (out_of_range(found).sum(), (~full).sum(), full.sum(), *cadence_counts),
        ):
            counts[key] += int(value)
    return {
        **counts,
        **{f"{kind} chords": n for kind, n in kinds.items()},
        "fifths per 100 changes": _rate(counts["fifths"], counts["changes"]),
        "octaves per 100 changes": _rate(counts["octaves"], counts["changes"]),
        "crossed %": _rate(counts["crossed"], counts["chords"]),
        "outside range %": _rate(counts["outside"], counts["notes"]),
        "a voice rests %": _rate(counts["rests"], counts["chords"]),
        **{f"{kind} %": _rate(n, counts["full"]) for kind, n in kinds.items()},
        "root-position cadences %": _rate(counts["tonic"], counts["cadences"]),
        "authentic cadences %": _rate(counts["authentic"], counts["cadences"]),
    }


ROWS = (  # (label, rate key, count key): the table's rows
    ("pieces / chords", None, None),
    ("parallel fifths per 100 chord changes", "fifths per 100 changes", "fifths"),
    ("parallel octaves/unisons per 100 chord changes", "octaves per 100 changes", "octaves"),
    ("chords with a voice crossing, %", "crossed %", "crossed"),
    ("notes outside the SATB ranges, %", "outside range %", "outside"),
    ("chords with a resting voice, %", "a voice rests %", "rests"),
    ("complete triads, % of 4-voice chords", "triad %", "triad chords"),
    ("complete seventh chords, %", "seventh %", "seventh chords"),
    ("triads/sevenths, fifth omitted, %", "fifth omitted %", "fifth omitted chords"),
    ("none of these, %", "other %", "other chords"),
    ("fermatas ending on a root-position triad, %", "root-position cadences %", "tonic"),
    ("authentic cadences (V(7)-I) at fermatas, %", "authentic cadences %", "authentic"),
)


def table(columns):
    """A markdown table of `statistics` dicts side by side: {column title: statistics}, each
    cell a rate with its count in parentheses."""
    titles = list(columns)
    lines = [
        "| check | " + " | ".join(titles) + " |",
        "|---|" + "---:|" * len(titles),
    ]
    for label, rate, count in ROWS:
        cells = [
            f"{s['pieces']} / {s['chords']}" if rate is None else f"{s[rate]:.2f} ({s[count]})"
            for s in columns.values()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the command: Bach's held-out chorales beside a model's harmonisations of their sopranos --
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
    """`python -m pipelines.music.voice_leading` (see the module docstring)."""
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
    prog = "python -m pipelines.music.voice_leading"
    try:
        rest = values([prog, *(sys.argv[1:] if argv is None else argv)])
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
        sys.exit(f"{prog}: error: {str(error).strip().splitlines()[0]}")
    print(report)


if __name__ == "__main__":
    main()
