"""Labelled anomaly series as datasets, from the aeon wheel (nothing downloads):

    zoo_ucr_anomaly135    UCR anomaly archive (KDD-TSAD 2021) series 135,
                          InternalBleeding16: a train part without anomalies, then a test part
                          with one labelled anomaly
    zoo_ecg_anomalies     GutenTAG's synthetic ECG series `ecg-diff-count-3` (semi-supervised:
                          a normal train series, a test series with three kinds of anomaly)

An example is {"name", "y" (time,), "is_anomaly" (time,) int8}; splits "train" and "test" as
the archive ships them.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.base import ZooBuilder


class _AnomalyBuilder(ZooBuilder, skip_registration=True):
    HOMEPAGE = "https://www.aeon-toolkit.org/"
    LICENSE = "BSD-3-Clause (aeon); the series' own terms, see the citation"

    def features(self):
        return tfds.features.FeaturesDict(
            {
                "name": tfds.features.Text(doc="The series' name."),
                "y": tfds.features.Tensor(shape=(None,), dtype=np.float64, doc="Values."),
                "is_anomaly": tfds.features.Tensor(
                    shape=(None,), dtype=np.int8, doc="1 where a labelled anomaly is."
                ),
            }
        )

    def parts(self) -> dict:
        """{split: (values, labels)}."""
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        return {
            split: self._generate_examples(split, *part) for split, part in self.parts().items()
        }

    def _generate_examples(self, split, values, labels):
        yield (
            split,
            {
                "name": f"{self.name}-{split}",
                "y": np.asarray(values, np.float64),
                "is_anomaly": np.asarray(labels, np.int8),
            },
        )


class ZooUCRAnomaly135(_AnomalyBuilder):
    """UCR anomaly archive series 135 (InternalBleeding16), as aeon 1.6 ships it: its first
    1,200 points, normal, for training, and the whole series of 7,501 points (those 1,200
    included) holding one labelled anomaly of 12 points for test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "aeon 1.6's KDD-TSAD 135 train and test files."}
    CITATION = (
        "@inproceedings{wu2021ucr, author={Wu, R. and Keogh, E. J.}, title={Current "
        "Time Series Anomaly Detection Benchmarks are Flawed and are Creating the "
        "Illusion of Progress}, booktitle={IEEE TKDE}, year={2021}}"
    )

    def parts(self):
        from aeon.datasets import load_kdd_tsad_135

        return {split: load_kdd_tsad_135(split) for split in ("train", "test")}


class ZooECGAnomalies(_AnomalyBuilder):
    """GutenTAG's synthetic ECG series with three kinds of anomaly (`ecg-diff-count-3`, aeon
    1.6, semi-supervised: a normal train series and a labelled test series)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "aeon 1.6's ecg-diff-count-3, semi-supervised split."}
    CITATION = (
        "@inproceedings{wenig2022gutentag, author={Wenig, P. and Schmidl, S. and "
        "Papenbrock, T.}, title={TimeEval: A Benchmarking Toolkit for Time Series "
        "Anomaly Detection Algorithms}, booktitle={PVLDB 15(12)}, year={2022}}"
    )

    def parts(self):
        import warnings

        from aeon.datasets import load_ecg_diff_count_3

        with warnings.catch_warnings():  # deprecated after aeon 1.6: the extra pins 1.6
            warnings.simplefilter("ignore", FutureWarning)
            test, test_labels, train, train_labels = load_ecg_diff_count_3("semi-supervised")
        return {"train": (train, train_labels), "test": (test, test_labels)}
