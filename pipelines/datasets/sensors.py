"""Sensor and other multivariate sequence classification sets as datasets.

Three sets of the UCR/UEA time-series classification archive ship inside the `aeon` wheel
(PyPI, `pip install 'lstm-zoo[classify]'`), with the archive's own train/test splits:

    zoo_basic_motions            BasicMotions: smartwatch accelerometer and gyroscope, 6
                                 channels, 100 steps, 4 activities; 40 train / 40 test
    zoo_pickup_gesture_wiimote_z PickupGestureWiimoteZ: Wiimote z acceleration, 1 channel,
                                 29-361 steps, 10 gestures; 50 / 50
    zoo_japanese_vowels          JapaneseVowels: 12 LPC cepstrum channels, 7-29 steps, 9
                                 speakers; 270 / 370

A user's own `.ts` or long-format CSV file (`zoo_sensor_files`, see `sensor_files`) is split
into train, validation and test by class; a folder holding one `*_TRAIN` and one `*_TEST`
file (.ts or .csv) keeps that split. In every dataset the validation split is carved from the
training file: of each class, 15% of its sequences (at least one of three or more), chosen
by a CRC32 of their ids (`sensor_files.carve`).

An example is {"id", "row" (its line in the file), "series" (time, channels) float32,
"label"}; labels are the file's strings.

    import pipelines.datasets, tensorflow_datasets as tfds
    tfds.load("zoo_basic_motions", split="test")
"""

from __future__ import annotations

import glob
import importlib.util
import os

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets import _quiet_tfds_logs, sensor_files
from pipelines.datasets.base import ZooBuilder

SPLITS = ("train", "validation", "test")
ARCHIVE = "https://www.timeseriesclassification.com"
ARCHIVE_CITATION = (
    "@article{dau2019ucr, title={The UCR time series archive}, author={Dau, Hoang Anh and "
    "Bagnall, Anthony and Kamgar, Kaveh and Yeh, Chin-Chia Michael and Zhu, Yan and "
    "Gharghabi, Shaghayegh and Ratanamahatana, Chotirat Ann and Keogh, Eamonn}, "
    "journal={IEEE/CAA Journal of Automatica Sinica}, volume={6}, number={6}, "
    "pages={1293--1305}, year={2019}}\n"
    "@article{bagnall2018uea, title={The UEA multivariate time series classification "
    "archive, 2018}, author={Bagnall, Anthony and Dau, Hoang Anh and Lines, Jason and Flynn, "
    "Michael and Large, James and Bostrom, Aaron and Southam, Paul and Keogh, Eamonn}, "
    "journal={arXiv preprint arXiv:1811.00075}, year={2018}}"
)


def aeon_data_dir() -> str:
    """The folder of the archive sets installed with aeon (found without importing it)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The archive's sensor sets ship with aeon: pip install "
            "'lstm-zoo[classify]' (or pip install aeon), or pass --data=PATH"
        )
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data")


def archive_pair(folder) -> tuple[str, str] | None:
    """(train file, test file) of a folder holding one *_TRAIN and one *_TEST .ts/.csv file
    (train.csv / test.csv too); None if it holds no such pair."""
    found = {}
    for part in ("train", "test"):
        names = [
            p
            for suffix in ("ts", "csv")
            for pattern in (f"*_{part.upper()}.{suffix}", f"{part}.{suffix}")
            for p in glob.glob(os.path.join(folder, pattern))
        ]
        if len(names) > 1:
            raise ValueError(
                f"{folder}: {len(names)} {part} files ({', '.join(names)}); expected one"
            )
        found[part] = names[0] if names else None
    if not found["train"] and not found["test"]:
        return None
    missing = "train" if not found["train"] else "test" if not found["test"] else None
    if missing:
        raise ValueError(
            f"{folder}: no *_{missing.upper()}.ts/.csv file beside "
            f"{found['test' if missing == 'train' else 'train']}"
        )
    return found["train"], found["test"]


def local_splits(path) -> dict[str, list[dict]]:
    """The splits of a user's file or folder (see the module docstring)."""
    if os.path.isdir(path):
        pair = archive_pair(path)
        if pair is None:
            raise ValueError(
                f"{path}: a folder needs one *_TRAIN and one *_TEST file (.ts or "
                ".csv); or pass a single file"
            )
        train, test = (sensor_files.read_sequences(p) for p in pair)
        _check_channels(pair[1], test, train[0]["series"].shape[1])
        return sensor_files.archive_splits(train, test, pair[1])
    return sensor_files.single_file_splits(sensor_files.read_sequences(path))


def _check_channels(path, sequences, channels):
    for sequence in sequences:
        if sequence["series"].shape[1] != channels:
            raise ValueError(
                f"{path}: row {sequence['row']}: {sequence['series'].shape[1]} "
                f"channels, the training file has {channels} (ragged channels)"
            )


class _SequenceBuilder(ZooBuilder, skip_registration=True):
    def features(self):
        return tfds.features.FeaturesDict(
            {
                "id": tfds.features.Text(
                    doc="The sequence's id: file:line, or the CSV's sequence_id."
                ),
                "row": tfds.features.Scalar(
                    np.int64, doc="The line (row) of the file it starts on."
                ),
                "series": tfds.features.Tensor(
                    shape=(None, None),
                    dtype=np.float32,
                    encoding="bytes",
                    doc="Readings (time, channels).",
                ),
                "label": tfds.features.Text(doc="The class label, as the file writes it."),
            }
        )

    def splits(self) -> dict[str, list[dict]]:
        """The sequences of each split: {"train", "validation", "test"} -> examples."""
        raise NotImplementedError

    def _as_dataset(self, *args, **kwargs):
        # TFDS's decoder of a bytes-encoded tensor logs its own deprecation warning.
        with _quiet_tfds_logs():
            return super()._as_dataset(*args, **kwargs)

    def _split_generators(self, dl_manager):
        splits = self.splits()  # (TFDS cannot write an empty split: a small file may have one)
        return {split: self._generate_examples(splits[split]) for split in SPLITS if splits[split]}

    def _generate_examples(self, sequences):
        for index, sequence in enumerate(sequences):
            yield f"{index:06d}", sequence


class _ArchiveBuilder(_SequenceBuilder, skip_registration=True):
    """A set of the archive shipped in the aeon wheel: PROBLEM/PROBLEM_TRAIN.ts and _TEST.ts."""

    PROBLEM = ""
    HOMEPAGE = ARCHIVE
    CITATION = ARCHIVE_CITATION
    LICENSE = "The UCR/UEA archive's terms: free for research, cite the archive"

    def splits(self):
        """The archive's train (less validation), validation and test sequences."""
        folder = os.path.join(aeon_data_dir(), self.PROBLEM)
        train, test = (os.path.join(folder, f"{self.PROBLEM}_{p}.ts") for p in ("TRAIN", "TEST"))
        return sensor_files.archive_splits(
            sensor_files.read_ts(train), sensor_files.read_ts(test), test
        )


class ZooBasicMotions(_ArchiveBuilder):
    """BasicMotions (UEA archive): smartwatch 3-axis accelerometer and gyroscope, 6 channels
    of 100 steps (10 s at 10 Hz), 4 activities (standing, walking, running, badminton);
    the archive's 40 train (6 held out for validation) and 40 test sequences."""

    PROBLEM = "BasicMotions"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "The archive's train/test split from the aeon 1.6 wheel; "
        "validation carved from train by class and CRC32 of the id."
    }


class ZooPickupGestureWiimoteZ(_ArchiveBuilder):
    """PickupGestureWiimoteZ (UCR archive): Wiimote z-axis acceleration, 1 channel of 29-361
    steps, 10 gestures; the archive's 50 train (10 held out for validation) and 50 test
    sequences."""

    PROBLEM = "PickupGestureWiimoteZ"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = ZooBasicMotions.RELEASE_NOTES


class ZooJapaneseVowels(_ArchiveBuilder):
    """JapaneseVowels (UEA archive): 12 LPC cepstrum coefficients of 9 speakers saying /ae/,
    7-29 steps; the archive's 270 train (36 held out for validation) and 370 test
    sequences."""

    PROBLEM = "JapaneseVowels"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = ZooBasicMotions.RELEASE_NOTES


class ZooSensorFiles(_SequenceBuilder):
    """A user's `.ts` or long-format CSV file (`sequence_id, t, channels..., label`), or a
    folder of one *_TRAIN and one *_TEST such file (--data of the classify task)."""

    LOCAL = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Sequences of a local .ts/.csv file or archive pair, split by "
        "class and CRC32 of the id."
    }

    def splits(self):
        """The sequences of each split of the user's file or folder (`local_splits`)."""
        return local_splits(self.local_path)
