"""The `harmony` task: Bach chorales as serialised SATB tokens, a joint model of every chord
that also harmonises a given melody (soprano) or continues an opening.

    lstm-zoo train --task=harmony --transpositions=5 --run_dir=runs/harmony
    lstm-zoo train --task=harmony --head=frame --run_dir=runs/harmony-frame  # a step per chord
    lstm-zoo sample --run_dir=runs/harmony --melody=bach/bwv269 --output=bwv269
    lstm-zoo sample --run_dir=runs/harmony --melody=soprano.mid --output=harmonised
    lstm-zoo sample --run_dir=runs/harmony --melody=soprano.mid --rules --temperature=0.5
    lstm-zoo sample --run_dir=runs/harmony --prompt=opening.mid --length=32
    lstm-zoo export --preset=harmony_lstm --format=tflite     # a phone's file; from Python:
    harmonize(zoo.export.TFLiteStepModel("harmony_lstm-export/model.tflite"), melody)

Its test metric is the negative log-likelihood per time step of the same held-out chorales as
the `chorales` task, in the same unit (`zoo.models.harmony`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines import datasets
from pipelines.configs import option
from pipelines.music.chorales import transposed_grids
from pipelines.music.common import MusicConfig, MusicTask, read_pieces
from pipelines.music.harmony_frames import frame_batches, frame_window_stream
from pipelines.music.midi import (
    HIGHEST,
    LOWEST,
    STEPS_PER_QUARTER,
    grid_to_midi,
    grid_to_roll,
    midi_to_roll,
    plot_roll,
    read_midi,
    roll_to_grid,
)
from pipelines.streams import token_window_stream
from pipelines.tasks import TaskData, register_task
from zoo.models import frame_chorale, harmony
from zoo.models.harmony import VOICE_COUNT, SATBVocabulary


def chorale_frames(grid, fermata=None, steps_per_quarter=1):
    """(frames (n, 4), fermatas (n,)) of a 16th-note SATB grid at `steps_per_quarter`: the
    pitches at each step's onset, and whether a fermata holds anywhere in the step."""
    if STEPS_PER_QUARTER % steps_per_quarter:
        raise ValueError(
            f"`steps_per_quarter` must divide {STEPS_PER_QUARTER}. "
            f"Received: steps_per_quarter={steps_per_quarter}"
        )
    stride = STEPS_PER_QUARTER // steps_per_quarter
    grid = np.asarray(grid)
    held = np.zeros(len(grid), bool) if fermata is None else np.asarray(fermata, bool)
    held = np.pad(held, (0, -len(held) % stride)).reshape(-1, stride).any(1)
    return grid[::stride], held[: len(grid[::stride])]


def chorale_tokens(pieces, steps_per_quarter=1, transpositions=0, vocabulary=None):
    """Token sequences (SEP, then the frames) of (grid, fermata) pieces, each piece also
    transposed by -transpositions..transpositions semitones where it stays in range."""
    vocabulary = vocabulary or SATBVocabulary()
    sequences = []
    for grid, fermata in pieces:
        frames, held = chorale_frames(grid, fermata, steps_per_quarter)
        for moved in transposed_grids([frames], transpositions):
            sequences.append(np.concatenate([[vocabulary.SEP], vocabulary.encode(moved, held)]))
    return sequences


def chorale_batches(sequences, batch_size):
    """Whole chorales once, in order, as padded (inputs, targets) batches: inputs the tokens
    but the last, targets the tokens but the first (SEP), padded with PAD (never scored)."""
    import tensorflow as tf

    if not sequences:
        raise ValueError("No chorales to batch (an empty split?)")
    pairs = [(s[:-1].astype(np.int32), s[1:].astype(np.int32)) for s in sequences]
    spec = tf.TensorSpec((None,), tf.int32)
    data = tf.data.Dataset.from_generator(lambda: iter(pairs), output_signature=(spec, spec))
    return (
        data.padded_batch(batch_size)
        .apply(tf.data.experimental.assert_cardinality(-(-len(pairs) // batch_size)))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )


# -- harmonising and continuing ---------------------------------------------------------------
def fill(model, template, temperature=1.0, seed=None, allowed=None):
    """`template` completed by the model: `frame_chorale.fill_frames` for a frame model,
    `harmony.fill_chorale` for a serialised one (`allowed`: see `fill_chorale`)."""
    framed = isinstance(model, frame_chorale.FrameChoraleModel)
    return (frame_chorale.fill_frames if framed else harmony.fill_chorale)(
        model, template, temperature, seed, allowed=allowed
    )


def read_line(reference, voices=4) -> tuple[np.ndarray, np.ndarray | None]:
    """(grid (steps, voices) per 16th note, fermatas or None) of a MIDI file (its highest
    `voices` notes at every 16th) or of a Bach chorale of the corpus named by its music21
    path (e.g. `bach/bwv269`, read from the `zoo_bach_chorales` dataset, with its fermatas)."""
    if Path(reference).suffix.lower() in (".mid", ".midi") or Path(reference).is_file():
        midi = read_midi(reference)
        if midi is None:
            raise ValueError(f"{reference}: cannot read notes from this MIDI file")
        return roll_to_grid(midi_to_roll(midi), voices), None
    for split in ("train", "validation", "test"):
        for piece in datasets.examples("zoo_bach_chorales", split):
            if piece["name"] == reference:
                return np.asarray(piece["grid"])[:, :voices], np.asarray(piece["fermata"])
    raise ValueError(
        f"{reference}: neither a MIDI file nor a Bach chorale of the corpus "
        "(a music21 path such as bach/bwv269)"
    )


def _template(frames, held, length, fixed_voices, vocabulary):
    """Tokens (length, 5), -1 to draw: the markers and `fixed_voices` of the given frames."""
    template = np.full((length, VOICE_COUNT + 1), -1, np.int64)
    given = vocabulary.encode(
        np.pad(frames, ((0, 0), (0, VOICE_COUNT - frames.shape[1]))), held
    ).reshape(-1, VOICE_COUNT + 1)[:length]
    template[: len(given), : 1 + fixed_voices] = given[:, : 1 + fixed_voices]
    return template


def harmonize(
    model, melody, fermata=None, steps_per_quarter=1, temperature=1.0, seed=None, rules=False
):
    """Alto, tenor and bass under `melody` (MIDI pitches per 16th note, 0 = rest): the SATB
    grid per 16th note, its soprano the melody itself. The model reads the melody at each
    step's onset (`steps_per_quarter`) with the fermatas given (none: no phrase ends marked).
    `model` is a `SerialChoraleModel` or an exported file's `zoo.export.TFLiteStepModel` (see
    `zoo.models.harmony.fill_chorale`). `rules`: draw only notes that keep the voice-leading
    rules (`voice_leading_rules`). ValueError naming a pitch outside the model's range."""
    melody = np.asarray(melody, np.int64).reshape(-1)
    vocabulary = harmony.vocabulary_of(model)
    frames, held = chorale_frames(melody[:, None], fermata, steps_per_quarter)
    template = _template(frames, held, len(frames), 1, vocabulary)
    stride = STEPS_PER_QUARTER // steps_per_quarter
    allowed = voice_leading_rules(vocabulary, melody, stride) if rules else None
    tokens = fill(model, template, temperature, seed, allowed)[0]
    lower = np.repeat(
        vocabulary.decode(tokens)[0][:, 1:], STEPS_PER_QUARTER // steps_per_quarter, axis=0
    )[: len(melody)]
    return np.concatenate([melody[:, None], lower], 1).astype(np.int16)


def voice_leading_rules(vocabulary, melody, stride):
    """`fill_chorale`'s `allowed(tokens, frame, column)` for harmonising `melody` (per 16th
    note, one frame every `stride`): alto, tenor and bass keep their ranges, cross no voice
    above and make no parallel fifths or octaves with one (`voice_leading.allowed_pitches`),
    the soprano read where it sounds just before each frame (its passing notes included)."""
    from pipelines.music.voice_leading import allowed_pitches

    candidates = np.concatenate([[0], np.arange(vocabulary.lowest, vocabulary.highest + 1)])
    offsets = 4 + np.arange(VOICE_COUNT) * vocabulary.pitches
    soprano_before = melody[np.maximum(np.arange(0, len(melody), stride) - 1, 0)]

    def pitches(tokens, voices):
        index = tokens[..., :voices] - offsets[:voices]
        return np.where(index > 0, index - 1 + vocabulary.lowest, 0)

    def allowed(tokens, frame, column):
        voice = column - 1
        if voice < 1:
            return None
        before = None
        if frame:
            before = pitches(tokens[:, frame - 1, 1:], VOICE_COUNT)
            before[:, 0] = soprano_before[frame]
        ok = allowed_pitches(before, pitches(tokens[:, frame, 1:], voice), voice, candidates)
        mask = np.zeros((len(tokens), vocabulary.size), bool)
        mask[:, vocabulary.voice_tokens(voice)] = ok
        return mask

    return allowed


def continue_chorale(
    model, opening, length, fermata=None, steps_per_quarter=1, temperature=1.0, seed=None
):
    """An SATB grid per 16th note: the opening (steps, 4) per 16th note, kept exactly (the
    model reads it at each step's onset, `steps_per_quarter`), then the model's frames,
    `length` steps in all."""
    opening = np.asarray(opening, np.int64).reshape(-1, VOICE_COUNT)
    vocabulary = harmony.vocabulary_of(model)
    frames, held = chorale_frames(opening, fermata, steps_per_quarter)
    template = _template(frames, held, max(length, len(frames)), VOICE_COUNT, vocabulary)
    tokens = fill(model, template, temperature, seed)[0]
    grid = np.repeat(vocabulary.decode(tokens)[0], STEPS_PER_QUARTER // steps_per_quarter, axis=0)
    grid[: len(opening)] = opening
    return grid


def check_range(grid, source):
    """ValueError naming `source` and the first pitch outside LOWEST..HIGHEST."""
    outside = (grid > 0) & ((grid < LOWEST) | (grid > HIGHEST))
    if outside.any():
        step = int(np.argwhere(outside)[0][0])
        raise ValueError(
            f"{source}: pitch {int(grid[outside][0])} at 16th note {step} is "
            f"outside the chorales' range {LOWEST}..{HIGHEST}"
        )


# -- the task ---------------------------------------------------------------------------------
@dataclass
class HarmonyConfig(MusicConfig):
    """Bach chorales as serialised SATB tokens (a joint model of every chord), NLL per step."""

    task: str = option("harmony", "Task to train (see `lstm-zoo list`).")
    size: str = option(
        "small", "Model size: a key of zoo.models.harmony.SIZES.", "zoo.models.harmony:SIZES"
    )
    embedding_dim: int | None = option(
        None, "Token embedding width; default the size's.", between=(1, 65_536)
    )
    steps_per_quarter: int = option(
        1, "Time steps (chords) per quarter note: 4, 2 or 1.", between=(1, 4)
    )
    head: str = option(
        "serial",
        "The chord's distribution: serial (a recurrent step per token) or frame (a step per "
        "chord, then an autoregressive head within it: zoo.models.frame_chorale).",
        choices=("serial", "frame"),
    )
    head_units: int = option(
        64,
        "--head=frame: a tanh layer of this width per token in the head (0: none).",
        between=(0, 65_536),
    )


@register_task
class HarmonyTask(MusicTask):
    """SATB chorales for a `SerialChoraleModel` (tokens) or, with `--head=frame`, a
    `FrameChoraleModel` (frames); see `HarmonyConfig`."""

    name, config_class = "harmony", HarmonyConfig
    corpus_dataset, folder_dataset = "zoo_bach_chorales", "zoo_midi_chorales"

    def pieces(self, config, split=True):
        """(grid, fermata or None) of every piece by split name."""
        return {
            name: [(p["grid"], p.get("fermata")) for p in chosen]
            for name, chosen in read_pieces(
                self.dataset(config), config.data, config.limit, split
            ).items()
        }

    def prepare(self, config, run_dir, split=True):
        pieces, spq = self.pieces(config, split), config.steps_per_quarter
        window, batch = self.sequence_length(config), config.batch_size
        framed = config.head == "frame"  # whole frames (harmony_frames) for a frame model
        batches = frame_batches if framed else chorale_batches
        evaluation = {n: batches(chorale_tokens(p, spq), batch) for n, p in pieces.items()}
        sequences = chorale_tokens(pieces["train"], spq, config.transpositions) if split else []
        train = np.concatenate(sequences) if split else np.zeros(0, np.int32)
        if split and len(train) <= window:
            raise ValueError(
                f"The train split has {len(train)} tokens, fewer than one window "
                f"of --seq_len={config.seq_len} steps"
            )

        def stream(step):
            if framed:
                return frame_window_stream(sequences, config.seq_len, batch, config.seed, step)
            return token_window_stream(train, window, batch, config.seed, step)

        return TaskData(
            train=stream if split else None,
            validation=evaluation.get("validation"),
            test=evaluation["test" if split else "all"],
            steps_per_pass=max(1, len(train) // window // batch),
            examples=len(train) // window if split else None,
            info={"pieces": {n: len(p) for n, p in pieces.items()}},
        )

    def build_model(self, config, data):
        framed = config.head == "frame"
        return (frame_chorale.frame_model if framed else harmony.serial_model)(
            config.size,
            cell=config.cell,
            dropout=config.dropout,
            **({"head_units": config.head_units} if framed else {}),
            **self.sizes(config, ("units", "layers", "embedding_dim")),
        )

    def loss(self, config):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=SATBVocabulary.PAD
        )

    def metrics(self, config):
        return [harmony.SerialNLLPerStep()]

    def headline(self, config):
        return "nll", True

    def sequence_length(self, config):
        """Tokens of one training window: `seq_len` frames of five tokens."""
        return config.seq_len * (VOICE_COUNT + 1)

    def export_options(self, config, data, count, seq_len=None):
        """What `zoo.export.export` needs: the first `count` held-out (validation) chorales,
        each whole from its SEP, cut to `seq_len` tokens (default the training window) or
        padded with PAD (never scored), so that the quality gate is the NLL per step of whole
        chorales; and the device's metadata (the task, its settings, the SATB token layout).
        ValueError for a --head=frame run."""
        if config.head == "frame":  # its head draws within the frame, outside `step`
            raise ValueError(
                f"{config.run_dir}: a --head=frame model does not export (its step gives the "
                "context of a chord, not the chord's tokens); export a --head=serial run"
            )
        import dataclasses

        seq_len = seq_len or self.sequence_length(config)
        windows = []
        for inputs, _ in data.validation or data.test:
            for row in np.asarray(inputs, np.int32)[: count - len(windows)]:
                row = row[:seq_len]
                windows.append(np.pad(row, (0, seq_len - len(row)))[None])
            if len(windows) >= count:
                break
        return {
            "representative_data": windows,
            "seq_len": seq_len,
            "metadata": {
                "task": config.task,
                "config": dataclasses.asdict(config),
                "satb_vocabulary": SATBVocabulary().metadata(),
            },
        }

    def sample(
        self,
        config,
        run_dir,
        model,
        prompt=None,
        melody=None,
        length=None,
        temperature=1.0,
        seed=None,
        output=None,
        rules=False,
    ):
        """Write a chorale as MIDI and piano-roll PNG; returns their paths.

        `melody` (a MIDI file, or a corpus chorale such as bach/bwv269) is harmonised: its
        highest line is the soprano, kept exactly (`rules`: under the voice-leading rules of
        `voice_leading_rules`); else `prompt` (a MIDI file or corpus
        chorale) is the opening the model continues, to `length` steps (default 16 bars).
        """
        spq = config.steps_per_quarter
        stem = Path(output or Path(run_dir) / "samples" / f"{self.name}-{seed or 0}")
        if melody:
            line, fermata = read_line(melody, voices=1)
            check_range(line, melody)
            grid = harmonize(model, line[:, 0], fermata, spq, temperature, seed, rules)
            title = f"{config.cell}: {Path(melody).stem} harmonised"
        else:
            if rules:
                raise ValueError("--rules harmonises a --melody; give --melody=FILE or a chorale")
            opening, fermata = read_line(prompt) if prompt else (np.zeros((0, 4), int), None)
            check_range(opening, prompt)
            grid = continue_chorale(
                model, opening, length or 64 * spq, fermata, spq, temperature, seed
            )
            title = f"{config.cell}: generated chorale"
        midi_path = grid_to_midi(grid, stem.with_suffix(".mid"))
        png_path = stem.with_suffix(".png")
        plot_roll(grid_to_roll(grid), png_path, title=title)
        return f"Wrote {midi_path} and {png_path}"
