"""Voice-leading and harmony statistics of SATB grids (NumPy only): the rules a harmony
textbook checks, counted so that a model's chorales can be set beside Bach's in one table
(`table`; `pipelines.music.rule_check` draws the model's and prints it).

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
