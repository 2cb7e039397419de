"""English-Spanish Bible verse pairs as a TensorFlow Datasets builder that needs no network.

    from pipelines.datasets import bible_pairs
    splits = bible_pairs.load()                   # {"train": ds, "validation": ds, "test": ds}
    for example in splits["test"]: example["en"], example["es"]

The verses come from the SWORD modules in manual_dir (default /usr/share/sword, filled by
Debian `sword-text-kjv` and `sword-text-sparv`), paired by verse index and split exactly as
`pipelines.translation.split_pairs` does.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from pipelines import sword
from pipelines.translation import TranslationConfig, split_pairs


class BiblePairs(tfds.core.GeneratorBasedBuilder):
    """~31k verse pairs of the King James Version and the Reina-Valera 1909: {"en", "es"}."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Install the modules with `apt-get install sword-text-kjv sword-text-sparv`; manual_dir "
        "is the SWORD root holding mods.d/ and modules/ (default /usr/share/sword)."
    )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="English (KJV) and Spanish (Reina-Valera 1909) Bible verse pairs.",
            features=tfds.features.Translation(languages=("en", "es")),
            supervised_keys=("en", "es"),
            homepage="https://crosswire.org/sword/",
            license="Public domain",
        )

    def _split_generators(self, dl_manager):
        pairs = sword.verse_pairs(root=os.fspath(dl_manager.manual_dir))
        splits = split_pairs(pairs, TranslationConfig.holdout, TranslationConfig.seed)
        return {name: self._generate_examples(split) for name, split in splits.items()}

    def _generate_examples(self, pairs):
        for i, (english, spanish) in enumerate(pairs):
            yield i, {"en": english, "es": spanish}


def load(data_dir=None, manual_dir=None):
    """The prepared splits as a dict of tf.data.Datasets (prepares them on first use)."""
    builder = BiblePairs(data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir or sword.SWORD_ROOT),
        file_format="tfrecord",
    )
    return builder.as_dataset()
