"""The rule checks of `pipelines.music.voice_leading` on hand-made SATB grids, the rule filter
of harmonising, and the rule-check command (`pipelines.music.rule_check`)."""

import math

import numpy as np
import pytest

from pipelines.music import rule_check
from pipelines.music import voice_leading as vl

C_MAJOR = [72, 67, 64, 48]  # C5 G4 E4 C3: root position
G_SEVENTH = [65, 62, 59, 43]  # F4 D4 B3 G2: complete dominant seventh, root position


def grid(*chords, beats=1):
    """A 16th-note grid holding each chord for `beats` quarter notes."""
    return np.repeat(np.array(chords), 4 * beats, axis=0)


def test_parallel_fifths_by_similar_motion_count():
    # Alto and tenor move up a step a perfect fifth apart; soprano and bass hold.
    assert vl.parallels(np.array([[72, 67, 60, 48], [72, 69, 62, 48]])) == (1, 0)
    # A compound fifth (soprano-bass 19 -> 31 semitones) is a fifth too.
    assert vl.parallels(np.array([[67, 60, 52, 48], [79, 60, 52, 48]])) == (0, 0)  # bass holds
    assert vl.parallels(np.array([[67, 64, 60, 48], [69, 64, 60, 50]])) == (1, 0)


def test_parallel_octaves_and_unisons_count_as_octaves():
    assert vl.parallels(np.array([[72, 64, 60, 48], [74, 65, 60, 50]])) == (0, 1)
    assert vl.parallels(np.array([[72, 60, 60, 48], [72, 62, 62, 48]])) == (0, 1)  # unison


def test_contrary_oblique_and_unequal_fifths_do_not_count():
    # Tenor up, bass down: a fifth to a twelfth by contrary motion.
    assert vl.parallels(np.array([[72, 64, 55, 48], [72, 64, 62, 43]])) == (0, 0)
    # Repeated chord: no motion at all.
    assert vl.parallels(np.array([C_MAJOR, C_MAJOR])) == (0, 0)
    # A perfect fifth to a diminished fifth (alto-tenor 7 -> 6) by similar motion.
    assert vl.parallels(np.array([[72, 67, 60, 48], [72, 68, 62, 48]])) == (0, 0)
    # A resting voice takes no part.
    assert vl.parallels(np.array([[72, 67, 60, 0], [72, 69, 62, 0]])) == (1, 0)
    assert vl.parallels(np.array([[72, 67, 0, 48], [72, 69, 62, 48]])) == (0, 0)


def test_voice_crossing():
    crossed = vl.crossed(np.array([[72, 64, 67, 48], [72, 67, 67, 48], [60, 67, 64, 48]]))
    assert crossed.tolist() == [True, False, True]  # tenor over alto; a unison; alto over soprano


def test_out_of_range_notes():
    outside = vl.out_of_range(np.array([[79, 55, 48, 40], [80, 54, 47, 39], [0, 74, 67, 60]]))
    assert outside.tolist() == [[False] * 4, [True] * 4, [False] * 4]


@pytest.mark.parametrize(
    "pitches, kind, name, root",
    [
        (C_MAJOR, "triad", "major", 0),
        ([69, 64, 60, 57], "triad", "minor", 9),  # A C E, doubled A
        ([71, 65, 62, 59], "triad", "diminished", 11),
        (G_SEVENTH, "seventh", "dominant seventh", 7),
        ([68, 65, 62, 59], "seventh", "diminished seventh", None),  # symmetric: any root
        ([65, 59, 55, 43], "fifth omitted", "dominant seventh", 7),  # G B F
        ([72, 64, 60, 48], "fifth omitted", "major", 0),  # C E C C
        ([72, 71, 67, 48], "other", None, None),  # C B G: a suspension, not a chord
        ([72, 67, 60, 48], "other", None, None),  # an open fifth
    ],
)
def test_chord_quality(pitches, kind, name, root):
    found = vl.quality(pitches)
    assert found[:2] == (kind, name)
    if root is not None:
        assert found[2] == root


def test_chords_collapse_repeats_drop_rests_and_read_beats():
    passing = np.array(
        [C_MAJOR] * 2 + [[74, 67, 64, 48]] * 2 + [[0, 0, 0, 0]] * 4 + [G_SEVENTH] * 4
    )
    fermata = np.zeros(len(passing), bool)
    fermata[-1] = True
    chords, under = vl.chords(passing, fermata)
    assert chords.tolist() == [C_MAJOR, [74, 67, 64, 48], [0, 0, 0, 0], G_SEVENTH]
    assert under.tolist() == [False, False, False, True]
    beats, _ = vl.chords(passing, fermata, steps_per_quarter=1)
    assert beats.tolist() == [C_MAJOR, [0] * 4, G_SEVENTH]  # the passing D5 is between beats
    # No transition crosses the silence: C5-G4 to C5-G4 over it are no parallel octaves/fifths.
    stats = vl.statistics([grid([72, 67, 60, 48], [0] * 4, [74, 69, 62, 50])])
    assert (stats["chords"], stats["changes"], stats["fifths"], stats["octaves"]) == (2, 0, 0, 0)
    with pytest.raises(ValueError, match="fermata flags"):
        vl.chords(passing, fermata[:-1])


def test_cadences():
    g7_c = np.array([G_SEVENTH, [72, 64, 60, 48]])  # V7 - I, root position (fifth omitted)
    assert vl.cadences(g7_c, np.array([False, True])) == (1, 1, 1)
    first_inversion = np.array([G_SEVENTH, [72, 67, 60, 52]])  # I6: bass on the third
    assert vl.cadences(first_inversion, np.array([False, True])) == (1, 0, 0)
    plagal = np.array([[72, 65, 60, 53], C_MAJOR])  # IV - I: root position, not authentic
    assert vl.cadences(plagal, np.array([False, True])) == (1, 1, 0)
    # A fermata over two chords: the last one is the cadence.
    assert vl.cadences(np.array([C_MAJOR, G_SEVENTH]), np.array([True, True])) == (1, 0, 0)


def test_statistics_pool_counts_and_rates():
    fifths = grid([72, 67, 60, 48], [72, 69, 62, 48], C_MAJOR)  # one parallel in two changes
    cadence = grid(G_SEVENTH, [64, 60, 60, 48], beats=2)  # V7 - I, each voice to its nearest
    held = np.zeros(len(cadence), bool)
    held[-8:] = True
    stats = vl.statistics([fifths, cadence], [None, held])
    assert (stats["pieces"], stats["chords"], stats["changes"]) == (2, 5, 3)
    assert stats["fifths per 100 changes"] == pytest.approx(100 / 3)
    assert stats["octaves per 100 changes"] == 0
    assert stats["authentic cadences %"] == 100 and stats["root-position cadences %"] == 100
    assert stats["triad chords"] == 1 and stats["seventh chords"] == 1
    assert stats["fifth omitted chords"] == 1 and stats["other chords"] == 2  # C-G, C-A-D
    assert math.isnan(vl.statistics([fifths])["authentic cadences %"])  # no fermata at all
    table = vl.table({"Bach": stats, "model": stats})
    assert "| check | Bach | model |" in table
    assert "| parallel fifths per 100 chord changes | 33.33 (1) | 33.33 (1) |" in table


def test_allowed_pitches_keep_range_order_and_forbid_parallels():
    before = np.array([[72, 67, 60, 48]])
    chord = np.array([[72, 69, 62]])  # alto and tenor already moved up a fifth apart
    candidates = np.array([0, 38, 43, 48, 50, 55, 60, 62])
    ok = vl.allowed_pitches(before, chord, 3, candidates)[0]
    # 38 and 62 lie outside the bass range; 50 (D3) makes octaves with the tenor (D4) by
    # similar motion; 55 (G3) a fourth with it, a ninth with the alto.
    assert dict(zip(candidates.tolist(), ok.tolist())) == {
        0: True, 38: False, 43: True, 48: True, 50: False, 55: True, 60: True, 62: False,
    }  # fmt: skip
    # A voice may double the one above it in unison but not cross it.
    crossing = vl.allowed_pitches(None, np.array([[72, 64]]), 2, np.array([64, 65]))[0]
    assert crossing.tolist() == [True, False]
    # The tenor's own fifth with the alto: 62 repeats it, 64 escapes it.
    tenor = vl.allowed_pitches(before, np.array([[72, 69]]), 2, np.array([62, 64]))[0]
    assert tenor.tolist() == [False, True]
    assert vl.allowed_pitches(None, chord, 3, np.array([50]))[0].tolist() == [True]


@pytest.fixture(scope="module")
def harmony_lstm():
    import zoo.presets

    return zoo.presets.load_model("harmony_lstm")


def test_harmonising_under_the_rules_breaks_none(harmony_lstm):
    from pipelines import datasets
    from pipelines.music.harmony import harmonize

    piece = next(iter(datasets.examples("zoo_bach_chorales", "test")))
    melody, fermata = np.asarray(piece["grid"])[:, 0], np.asarray(piece["fermata"])
    free = [harmonize(harmony_lstm, melody, fermata, 1, 1.0, seed) for seed in range(3)]
    ruled = [harmonize(harmony_lstm, melody, fermata, 1, 1.0, s, rules=True) for s in range(3)]
    assert all((grid[:, 0] == melody).all() for grid in ruled)
    loose, kept = vl.statistics(free, [fermata] * 3), vl.statistics(ruled, [fermata] * 3)
    assert loose["fifths"] + loose["octaves"] > 0  # the model alone breaks them
    assert kept["fifths"] == kept["octaves"] == kept["crossed"] == kept["outside"] == 0


def test_command_harmonises_held_out_chorales(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path))
    rule_check.main(["--preset=harmony_lstm", "--limit=2", "--temperatures=0.8,0", "--free"])
    out = capsys.readouterr().out
    header = "| check | Bach, held-out | harmony_lstm, T=0.8 | harmony_lstm + rules, T=0.8 |"
    assert (
        header + " harmony_lstm, T=0 | harmony_lstm + rules, T=0 | harmony_lstm free, T=0.8 |"
        in out
    )
    rows = [line for line in out.splitlines() if line.startswith("| pieces / chords")]
    assert rows and rows[0].count("| 2 / ") == 6
    assert "2 test chorales x 1 sample(s) x 5 column(s) drawn in" in out
    rule_check.main(["--preset=harmony_lstm", "--limit=1", "--norules", "--steps_per_quarter=1"])
    out = capsys.readouterr().out
    assert "| check | Bach, held-out | harmony_lstm, T=0.5 |\n" in out
    assert "read at 1 frame(s) per quarter note" in out


def test_command_refuses_bad_flags_in_one_line(capsys):
    for argv, message in (
        (["--preset=harmony_lstm", "--temperatures=hot"], "'hot' is not a number"),
        (["--preset=harmony_lstm", "--run_dir=x"], "give --preset=NAME or --run_dir=DIR"),
        (["--preset=chorales_lstm"], "is a chorales model, not a harmony model"),
        (["--preset=nope"], "error: Unknown preset 'nope'"),
        (["--preset=harmony_lstm", "--limit=0"], "0 is not a positive integer"),
    ):
        with pytest.raises(SystemExit) as exit_:
            rule_check.main(argv)
        assert message in str(exit_.value) and "\n" not in str(exit_.value)
    rule_check.main(["--help"])
    assert "--temperatures" in capsys.readouterr().out


def test_sample_harmonises_under_the_rules(tmp_path, monkeypatch, capsys):
    from pipelines import cli
    from pipelines.music.midi import midi_to_roll, read_midi, roll_to_grid

    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path))
    stem = tmp_path / "bwv269"
    argv = ["sample", "--preset=harmony_lstm", "--melody=bach/bwv269", f"--output={stem}"]
    assert cli.run([*argv, "--rules", "--seed=1"]) == 0
    grid = roll_to_grid(midi_to_roll(read_midi(stem.with_suffix(".mid"))), 4)
    stats = vl.statistics([grid])
    assert stats["chords"] > 20 and stats["fifths"] == stats["octaves"] == stats["outside"] == 0
    assert cli.run(["sample", "--preset=harmony_lstm", "--rules", f"--output={stem}"]) == 1
    assert "--rules harmonises a --melody" in capsys.readouterr().err
