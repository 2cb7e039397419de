"""The music corpora as a TensorFlow Datasets builder that never touches the network.

    from pipelines.datasets import music
    splits = music.load("chorales")              # {"train": ds, "validation": ds, "test": ds}
    for example in splits["test"]: example["name"], example["satb"], example["roll"]
    splits = music.load("melody")                # examples: {"name", "pitch", "duration"}

Two configs: `chorales` (SATB grids per 16th note and their piano rolls, pitches 36..81) and
`melody` (note events: MIDI pitch or 0 for a rest, and an index into
`zoo.models.melody.DURATIONS`). The source is the music21 corpus, parsed once and cached in
`manual_dir` (default `pipelines.music.CACHE_DIR`), or the MIDI files in `manual_dir` if it holds
any; the split of a piece is fixed by its name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from pipelines import music


class Music(tfds.core.GeneratorBasedBuilder):
    """Bach chorales (config `chorales`) or folk melodies (config `melody`); an example a piece."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="chorales", description="Bach chorales as SATB grids."),
        tfds.core.BuilderConfig(name="melody", description="Folk tunes as note events."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Nothing to download: the music21 corpus is a dependency, cached in manual_dir "
        "(pipelines.music.CACHE_DIR). A manual_dir holding MIDI files is read instead."
    )

    def _info(self):
        if self.builder_config.name == "chorales":
            features = {
                "satb": tfds.features.Tensor(shape=(None, 4), dtype=np.int16),
                "roll": tfds.features.Tensor(shape=(None, music.PITCHES), dtype=np.bool_),
            }
        else:
            features = {
                "pitch": tfds.features.Tensor(shape=(None,), dtype=np.int16),
                "duration": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            }
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict({"name": tfds.features.Text(), **features}),
            homepage="https://web.mit.edu/music21/",
            license="music21 corpus: BSD-3-Clause (the chorales and folk tunes: public domain)",
        )

    def _split_generators(self, dl_manager):
        corpus = self._corpus(dl_manager.manual_dir)
        return {split: self._generate_examples(corpus, split) for split in music.SPLITS}

    def _corpus(self, manual_dir):
        manual_dir = Path(manual_dir)
        if any(p.suffix.lower() in (".mid", ".midi") for p in manual_dir.rglob("*")):
            return music.load_midi_folder(manual_dir, self.builder_config.name)
        if self.builder_config.name == "chorales":
            return music.load_chorales(cache_dir=manual_dir)
        return music.load_melodies(cache_dir=manual_dir)

    def _generate_examples(self, corpus, split):
        # Keyed by position: a chorale may occur twice in the Riemenschneider numbering.
        for key, (name, piece, where) in enumerate(zip(corpus.names, corpus.pieces,
                                                       corpus.splits)):
            if where != split:
                continue
            if self.builder_config.name == "chorales":
                yield key, {"name": name, "satb": piece.astype(np.int16),
                             "roll": music.grid_to_roll(piece).astype(bool)}
            else:
                yield key, {"name": name, "pitch": piece[:, 0].astype(np.int16),
                             "duration": piece[:, 1].astype(np.int16)}


def load(config="chorales", data_dir=None, manual_dir=None):
    """The prepared splits of `config` as a dict of tf.data.Datasets (prepared on first use)."""
    if manual_dir is None:
        manual_dir = music.CACHE_DIR
        manual_dir.mkdir(parents=True, exist_ok=True)
    builder = Music(config=config, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
        file_format="tfrecord",
    )
    return builder.as_dataset()
