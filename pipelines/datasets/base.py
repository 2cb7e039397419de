"""What the zoo's dataset builders share: their info, and the config of a local corpus."""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds


@dataclasses.dataclass
class LocalData(tfds.core.BuilderConfig):
    """A user's own file or folder read by a local builder; its name holds the data's
    fingerprint (`pipelines.datasets.data_fingerprint`), so changed data is a new config."""

    path: str = ""


class ZooBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder of the zoo: examples are generated in a fixed order and read back in it.

    Subclasses set VERSION, RELEASE_NOTES, HOMEPAGE, CITATION, LICENSE and `features()`, and
    LOCAL = True when they read a user's path (`self.local_path`) instead of a packaged corpus.
    """

    LOCAL = False
    HOMEPAGE = ""
    CITATION = ""
    LICENSE = ""

    def features(self) -> tfds.features.FeaturesDict:
        """The features of one example."""
        raise NotImplementedError

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(self.__doc__ or "").strip(),
            features=self.features(),
            homepage=self.HOMEPAGE or None,
            citation=self.CITATION or None,
            license=self.LICENSE or None,
            disable_shuffling=True,
        )

    @property
    def local_path(self) -> str:
        """The user's file or folder this builder reads (local builders only)."""
        if not self.LOCAL or not isinstance(self.builder_config, LocalData):
            raise ValueError(f"{self.name}: reads a local path given as --data")
        return self.builder_config.path
