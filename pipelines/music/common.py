"""What the chorale and melody tasks share: their settings, the pieces of their datasets'
splits, model sizes and the files a sample writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines import datasets
from pipelines.configs import TrainConfig, option
from pipelines.music.corpus import SPLITS, corpus_order
from pipelines.music.midi import plot_roll, read_midi
from pipelines.tasks import Task


def read_pieces(dataset, data=None, limit=None, split=True) -> dict[str, list[dict]]:
    """The pieces (dicts of NumPy values) of each split of music dataset `dataset`
    (`pipelines.datasets.music`; over the MIDI folder `data` for a local one), those of its
    first `limit` source files; without `split`, every piece as "all", in corpus order.

    ValueError naming the data for an empty split.
    """
    held = datasets.prepare(dataset, data).info.splits  # a small folder may lack a split
    pieces = {
        name: [
            piece
            for piece in datasets.examples(dataset, name, data)
            if limit is None or piece["file_index"] < limit
        ]
        if name in held
        else []
        for name in SPLITS
    }
    if not split:
        pieces = {"all": corpus_order([p for chosen in pieces.values() for p in chosen])}
    total = sum(len(chosen) for chosen in pieces.values())
    for name, chosen in pieces.items():
        if not chosen:
            raise ValueError(
                f"{data or dataset}: the {name} split is empty ({total} "
                f"piece{'s' * (total != 1)}"
                f"{f' in the first {limit} files' if limit else ''}); use more "
                "data (or a larger --limit)"
            )
    return pieces


@dataclass
class MusicConfig(TrainConfig):
    """Settings of both music tasks (`ChoralesConfig`, `MelodyConfig`)."""

    validation_steps: int | None = option(0, "Validation batches per epoch; 0 = all.")
    data: str | None = option(None, "Folder of MIDI files; default the music21 corpus.")
    limit: int | None = option(
        None,
        "Read only the pieces of the first N chorales / ABC files / MIDI files (quick runs).",
        between=(1, None),
    )
    seq_len: int = option(
        64, "Steps (chorales) or events (melody) per training window.", between=(1, 1_048_576)
    )
    transpositions: int = option(
        0,
        "Augmentation: also train on the training pieces transposed by -N..N semitones.",
        between=(0, 12),
    )
    cell: str = option("lstm", "Registered cell name.")
    size: str = option("small", "Model size: a key of the model's SIZES.")
    units: int | None = option(
        None, "Hidden units per layer; default the size's.", between=(1, 65_536)
    )
    layers: int | None = option(
        None, "Stacked recurrent layers; default the size's.", between=(1, 64)
    )
    dropout: float = option(0.0, "Dropout after every recurrent layer.", between=(0.0, 0.95))


class MusicTask(Task):
    """A music task: `compose` writes a piece, `sample` adds the MIDI primer and the files."""

    # The datasets the task reads: its own corpus, and a MIDI folder (--data) as its encoding.
    corpus_dataset, folder_dataset = "", ""
    feature = ""  # the notes of a piece: "grid" or "events"

    def dataset(self, config) -> str:
        """The dataset the task reads: its own corpus, or the local MIDI folder --data."""
        return self.folder_dataset if config.data else self.corpus_dataset

    def pieces(self, config, split=True) -> dict[str, list]:
        """The notes of every piece by split name (see `read_pieces`)."""
        return {
            name: [piece[self.feature] for piece in chosen]
            for name, chosen in read_pieces(
                self.dataset(config), config.data, config.limit, split
            ).items()
        }

    def sizes(self, config, names=("units", "layers")) -> dict:
        """The size overrides the config gives (None: the size's own)."""
        return {k: getattr(config, k) for k in names if getattr(config, k, None) is not None}

    def compose(self, config, model, primer, length, path, **options):
        """Generate a piece from the MIDI `primer` (or None), write it as MIDI at `path`;
        returns (MIDI path, piano roll, its steps per quarter, its lowest pitch)."""
        raise NotImplementedError

    def sample(
        self,
        config,
        run_dir,
        model,
        prompt=None,
        length=None,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        beam_size=None,
        output=None,
    ):
        """Write a generated piece as MIDI and piano-roll PNG; returns their paths.

        `prompt` is an optional MIDI file whose notes start the piece; `length` counts steps
        (chorales, default 16 bars) or events (melody, default 128); `beam_size` (melody)
        searches for the most likely continuation instead of sampling.
        """
        stem = Path(output or Path(run_dir) / "samples" / f"{self.name}-{seed or 0}")
        primer = read_midi(prompt) if prompt else None
        if prompt and primer is None:
            raise ValueError(f"--prompt: cannot read a MIDI primer from {prompt}")
        midi_path, roll, spq, lowest = self.compose(
            config,
            model,
            primer,
            length,
            stem.with_suffix(".mid"),
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            beam_size=beam_size,
        )
        png_path = stem.with_suffix(".png")
        plot_roll(
            roll,
            png_path,
            title=f"{config.cell}: generated {self.name}",
            steps_per_quarter=spq,
            lowest=lowest,
        )
        return f"Wrote {midi_path} and {png_path}"
