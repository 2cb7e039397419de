"""What the chorale and melody tasks share: their settings, corpus splits, model sizes and the
files a sample writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.configs import TrainConfig, option
from pipelines.music.corpus import load_midi_folder, splits_of
from pipelines.music.midi import plot_roll, read_midi
from pipelines.train import Task


@dataclass
class MusicConfig(TrainConfig):
    """Settings of both music tasks (`ChoralesConfig`, `MelodyConfig`)."""

    validation_steps: int | None = option(0, "Validation batches per epoch; 0 = all.")
    data: str | None = option(None, "Folder of MIDI files; default the music21 corpus.")
    limit: int | None = option(None, "Parse only the first N chorales / ABC files (quick runs).")
    seq_len: int = option(64, "Steps (chorales) or events (melody) per training window.")
    transpositions: int = option(0, "Augmentation: also train on the training pieces "
                                 "transposed by -N..N semitones.")
    cell: str = option("lstm", "Registered cell name.")
    size: str = option("small", "Model size: a key of the model's SIZES.")
    units: int | None = option(None, "Hidden units per layer; default the size's.")
    layers: int | None = option(None, "Stacked recurrent layers; default the size's.")
    dropout: float = option(0.0, "Dropout after every recurrent layer.")


class MusicTask(Task):
    """A music task: `compose` writes a piece, `sample` adds the MIDI primer and the files."""

    def default_corpus(self, config):
        """The task's own corpus (music21's chorales or folk tunes), without --data."""
        raise NotImplementedError

    def pieces(self, config, split=True):
        """(corpus, its pieces by split name): the MIDI folder --data, read as this task's
        encoding, or the task's own corpus."""
        corpus = (load_midi_folder(config.data, self.name) if config.data
                  else self.default_corpus(config))
        return corpus, splits_of(corpus, config.data, split)

    def sizes(self, config, names=("units", "layers")) -> dict:
        """The size overrides the config gives (None: the size's own)."""
        return {k: getattr(config, k) for k in names if getattr(config, k, None) is not None}

    def compose(self, config, model, primer, length, path, **options):
        """Generate a piece from the MIDI `primer` (or None), write it as MIDI at `path`;
        returns (MIDI path, piano roll, its steps per quarter, its lowest pitch)."""
        raise NotImplementedError

    def sample(self, config, run_dir, model, prompt=None, length=None, temperature=1.0,
               top_k=None, top_p=None, seed=None, beam_size=None, output=None):
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
            config, model, primer, length, stem.with_suffix(".mid"), temperature=temperature,
            top_k=top_k, top_p=top_p, seed=seed, beam_size=beam_size)
        png_path = stem.with_suffix(".png")
        plot_roll(roll, png_path, title=f"{config.cell}: generated {self.name}",
                  steps_per_quarter=spq, lowest=lowest)
        return f"Wrote {midi_path} and {png_path}"
