"""The zoo's corpora as TensorFlow Datasets: the one path every task reads its data through.

    import tensorflow_datasets as tfds
    import pipelines.datasets                        # registers the zoo's builders with tfds
    tfds.load("zoo_shakespeare", split="test")       # offline: built from installed packages

Each corpus has one builder (`tfds.core.GeneratorBasedBuilder` with version, release notes,
features, citation, homepage and licence) that generates its examples and fixed splits from
files installed with the package and its dependencies: nothing is downloaded. A user's own
file or folder (`--data`) becomes a dataset through a builder of the same kind over a local
path (`zoo_text_files`, ...), under a config named after the data's fingerprint, so changed
data is prepared anew and unchanged data never twice.

A new corpus is one module of this package defining a `base.ZooBuilder` subclass (and, for
users' own files of that kind, a local one with `LOCAL = True`); `register_all` finds it. Its
task reads it with `examples(name, split, data)`; then `python -m pipelines.datasets
--fingerprints NAME` pins its splits.

Prepared datasets live in TFDS's data directory (`$TFDS_DATA_DIR`, default
`~/tensorflow_datasets`), never inside the installed package. `python -m pipelines.datasets`
lists the datasets and their splits; `--fingerprints` rewrites the split fingerprints that a
test holds every packaged dataset to (a split that changes must come with a new version).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import io
import json
import logging
import os
import pkgutil
import sys
from pathlib import Path

from zoo.files import read_error

log = logging.getLogger(__name__)

# The split fingerprints of the packaged datasets (a test compares the prepared data to them).
FINGERPRINTS = Path(__file__).with_name("fingerprints.json")


def register_all() -> dict[str, type]:
    """Import every module of this package, registering its builders with tfds; the zoo's
    builder classes by dataset name. A new corpus is one module here: nothing else to edit."""
    from pipelines.datasets.base import ZooBuilder

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")

    def leaves(cls):
        for sub in cls.__subclasses__():
            yield from ([sub] if "_" not in sub.__name__[:1] else []) + list(leaves(sub))

    return {cls.name: cls for cls in leaves(ZooBuilder)}


def data_dir() -> str:
    """TFDS's data directory: $TFDS_DATA_DIR, else ~/tensorflow_datasets (read per call)."""
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def data_fingerprint(path) -> str:
    """A SHA-256 (16 hex digits) of the names and bytes of the file or folder `path`.

    Hidden files and folders are left out, and so is anything but a regular file.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        files, root = [path], os.path.dirname(path)
    elif os.path.isdir(path):
        root = path
        files = sorted(
            os.path.join(d, f)
            for d, dirs, names in os.walk(path)
            for f in names
            if not f.startswith(".")
            and not any(
                p.startswith(".") for p in os.path.relpath(d, path).split(os.sep) if p != "."
            )
            and os.path.isfile(os.path.join(d, f))
        )  # regular files only: no FIFOs
    else:
        try:
            os.stat(path)
        except OSError as error:
            raise read_error(path, error) from None
        raise ValueError(f"{path}: not a regular file or folder")
    digest = hashlib.sha256()
    for file in files:
        digest.update(os.path.relpath(file, root).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def builder(name: str, data=None):
    """The builder of dataset `name` ("dataset" or "dataset/config", as `tfds.load` takes
    it), over the local file or folder `data` if given (a builder of a local kind, e.g.
    `zoo_text_files`); not prepared yet (see `prepare`)."""
    import tensorflow_datasets as tfds

    builders = register_all()
    base, _, config_name = name.partition("/")
    if base not in builders:
        raise KeyError(f"Unknown dataset {name!r}. Known datasets: {', '.join(sorted(builders))}")
    cls, config = builders[base], config_name or None
    configs = [c.name for c in cls.BUILDER_CONFIGS or ()]
    if config_name and config_name not in configs:
        raise KeyError(
            f"Unknown config {name!r}. Configs of {base}: {', '.join(configs) or 'none'}"
        )
    if data is not None:
        from pipelines.datasets.base import LocalData

        if not getattr(cls, "LOCAL", False):
            raise ValueError(
                f"{name}: a packaged corpus; a local --data is read by another "
                "dataset of the same kind"
            )
        path = os.path.abspath(os.fspath(data))
        config = LocalData(
            name=f"local-{data_fingerprint(path)}",
            path=path,
            description=f"The local data at {path}.",
        )
    try:
        with _quiet_tfds_logs():  # "Using custom data configuration ..."
            return tfds.builder(base, data_dir=data_dir(), config=config)
    except Exception as error:  # noqa: BLE001 - TFDS reading a damaged dataset_info.json
        folder = Path(data_dir()) / base / (getattr(config, "name", config) or "")
        raise _damaged(
            folder, f"dataset_info.json unreadable: {str(error).splitlines()[-1][-200:]}"
        ) from None


@contextlib.contextmanager
def _preparing_lock(folder):
    """One process prepares a dataset at a time; the others wait, then find it prepared."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lstm-zoo-prepare.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def prepare(name: str, data=None):
    """The builder of dataset `name` (over `data`), prepared: generated once into the data
    directory; a prepared dataset is only checked, not generated again."""
    import tensorflow_datasets as tfds

    found = builder(name, data)
    if _is_prepared(found):
        return found
    with _preparing_lock(os.path.join(data_dir(), name.partition("/")[0])):  # all configs
        found = builder(name, data)  # another process may have prepared it meanwhile
        if not _is_prepared(found):
            if data is None:  # a packaged corpus: may take a while, and never fails on input
                print(
                    f"Preparing dataset {found.info.full_name} (once) in {found.data_dir}",
                    file=sys.stderr,
                    flush=True,
                )
            tfds.display_progress_bar(False)
            try:
                with _quiet_tfds_logs(), contextlib.redirect_stdout(io.StringIO()):
                    found.download_and_prepare(
                        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
                    )
            except BaseException:
                _remove_empty(Path(found.data_dir), stop=Path(data_dir()))
                raise
            found = builder(name, data)
    return found


def _remove_empty(folder: Path, stop: Path):
    """Remove `folder` and its parents up to `stop` while they are empty (a failed attempt)."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass  # TFDS removed it already
        except OSError:
            return
        folder = folder.parent


def _is_prepared(found) -> bool:
    """Whether `found`'s data directory holds a whole prepared dataset; ValueError naming it
    (and how to prepare it again) when it is damaged."""
    folder = Path(found.data_dir)
    if not (folder / "dataset_info.json").is_file():
        return False
    try:
        info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
        shards = [
            int(length) for split in info["splits"] for length in split.get("shardLengths", [])
        ]
        files = sorted(folder.glob("*.tfrecord-*"))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _damaged(folder, f"dataset_info.json unreadable: {error}") from None
    if len(files) != len(shards) or not files:
        raise _damaged(folder, f"{len(files)} data files for {len(shards)} shards")
    return True


def _damaged(folder, reason) -> ValueError:
    return ValueError(
        f"{folder}: a damaged prepared dataset ({reason}); remove that folder "
        f"(rm -r {folder}) and run the command again to prepare it anew"
    )


@contextlib.contextmanager
def _quiet_tfds_logs():
    """TFDS's log lines (what it generates and where, a custom config) stay off the
    terminal."""
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)


def examples(name: str, split: str, data=None) -> list[dict]:
    """The examples of `split` of dataset `name` (over `data`) as dicts of NumPy values, in
    the order they were generated; bytes features decoded to str."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    found = prepare(name, data)
    try:
        with _quiet_tfds_logs():  # decoding a compressed tensor logs a deprecation warning
            rows = list(tfds.as_numpy(found.as_dataset(split=split, shuffle_files=False)))
    except (tf.errors.DataLossError, tf.errors.NotFoundError, OSError) as error:
        raise _damaged(found.data_dir, str(error).splitlines()[0][:200]) from None
    return [
        {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in row.items()}
        for row in rows
    ]


def split_fingerprint(rows: list[dict]) -> str:
    """A SHA-256 (16 hex digits) of a split's examples, in order: what a test pins."""
    import numpy as np

    digest = hashlib.sha256()
    for row in rows:
        for key in sorted(row):
            value = row[key]
            digest.update(key.encode() + b"\0")
            digest.update(
                value.encode() if isinstance(value, str) else np.ascontiguousarray(value).tobytes()
            )
    return digest.hexdigest()[:16]


def fingerprints(name: str) -> dict:
    """{version, splits: {split: {examples, sha256}}} of packaged dataset `name`, prepared."""
    found = prepare(name)
    splits = {
        split: {"examples": len(rows), "sha256": split_fingerprint(rows)}
        for split in sorted(found.info.splits)
        for rows in [examples(name, split)]
    }
    return {"version": str(found.info.version), "splits": splits}


def packaged() -> list[str]:
    """The datasets of packaged corpora (the others read a local --data)."""
    return sorted(name for name, cls in register_all().items() if not cls.LOCAL)


def main(argv=None):
    """`python -m pipelines.datasets [--fingerprints [NAME ...]]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--fingerprints"]:
        from zoo.files import atomic_write

        names = argv[1:] or packaged()
        saved = json.loads(FINGERPRINTS.read_text()) if FINGERPRINTS.is_file() else {}
        saved.update({name: fingerprints(name) for name in names})
        atomic_write(FINGERPRINTS, json.dumps(dict(sorted(saved.items())), indent=2) + "\n")
        print(f"wrote {FINGERPRINTS}")
        return
    for name, cls in sorted(register_all().items()):
        kind = "local --data" if cls.LOCAL else "packaged"
        print(f"{name:<22} {cls.VERSION}  {kind:<12} {(cls.__doc__ or '').splitlines()[0]}")


if __name__ == "__main__":
    main()
