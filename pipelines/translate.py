"""Translate many sentences with a translation run: the library side of `lstm-zoo translate`.

with open("english.txt", encoding="utf-8") as lines:
    for spanish in translate_lines("runs/en-es-gru", lines, beam_size=4):
        print(spanish)
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator

from pipelines import train, translation
from pipelines.configs import check_range, setting_range
from pipelines.locks import RunLock

log = logging.getLogger(__name__)


def translate_lines(
    run_dir,
    lines: Iterable[str | bytes],
    *,
    batch_size: int = 64,
    beam_size: int | None = None,
    length_penalty: float | None = None,
    name: str | None = None,
) -> Iterator[str]:
    """One translation per line of `lines`, in input order, by the best checkpoint of `run_dir`.

    Lines are read `batch_size` at a time and translated together, so output starts after the
    first batch and memory stays bounded. Line ends are dropped; a blank line gives an empty
    line. A source longer than the run's --max_len subword tokens is cut to that length, with a
    warning (`logging`) naming its line. The run is loaded before the first line is read; an
    unusable run or a line that is not UTF-8 is a one-line ValueError or OSError.

    Args:
        beam_size, length_penalty: beam search settings; default the run's (as `sample`).
        name: what messages call the input (default its `name` attribute, or "input").
    """
    if isinstance(lines, (str, bytes)):
        raise TypeError("translate_lines: `lines` is one string; pass a list of lines or a file")
    for setting, value in (
        ("batch_size", batch_size),
        ("beam_size", beam_size),
        ("length_penalty", length_penalty),
    ):
        check_range(setting, value, setting_range(translation.TranslationConfig, setting))
    with RunLock(run_dir, shared=True):
        config = train.load_config(run_dir)
        if config.task != translation.TranslationTask.name:
            raise ValueError(f"{run_dir}: a {config.task} run, not a translation run")
        path = os.path.join(run_dir, translation.TOKENIZER)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing from the run directory")
        subwords = translation.Subwords.load(path)
        model = train.load_checkpoint(run_dir)
    expected = getattr(model, "source_vocab_size", len(subwords))
    if len(subwords) != expected:
        raise ValueError(
            f"{path}: {len(subwords)} subwords but the model was trained with {expected}"
        )
    search = {
        "beam_size": config.beam_size if beam_size is None else beam_size,
        "length_penalty": config.length_penalty if length_penalty is None else length_penalty,
    }
    name = name or getattr(lines, "name", "input")
    return _translated(model, subwords, lines, name, config.max_len, batch_size, search)


def _translated(model, subwords, lines, name, max_len, batch_size, search):
    numbered = enumerate(_text_lines(lines, name), 1)
    while batch := list(itertools.islice(numbered, batch_size)):
        texts = {number: line.strip() for number, line in batch if line.strip()}
        lengths = [len(ids) + 1 for ids in subwords.encode(list(texts.values()))]  # + eos
        long = [number for number, length in zip(texts, lengths) if length > max_len]
        if long:
            shown = ", ".join(map(str, long[:5])) + (
                f" and {len(long) - 5} more" if len(long) > 5 else ""
            )
            log.warning(
                "%s: line %s: longer than the %d subword tokens the run was trained on "
                "(--max_len); translated the first %d only",
                name,
                shown,
                max_len,
                max_len,
            )
        # A fixed max_length: one compiled search for every batch.
        outputs = translation.translate(
            model,
            subwords,
            list(texts.values()),
            **search,
            batch_size=batch_size,
            max_length=2 * max_len + 10,
            max_source_length=max_len,
        )
        translated = dict(zip(texts, outputs))
        for number, _ in batch:
            yield " ".join(translated.get(number, "").split())  # one line, whatever the model


def _text_lines(lines, name):
    """The lines of `lines` as text without their line end; ValueError where not UTF-8."""
    iterator, number = iter(lines), 0
    while True:
        try:
            line = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as error:  # a text stream decodes ahead, by blocks
            raise ValueError(
                f"{name}: not UTF-8 text after line {number} ({error.reason})"
            ) from None
        number += 1
        try:  # bytes, or text that a stream decoded with surrogate escapes (the C locale)
            raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
            line = raw.decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError) as error:
            raise ValueError(
                f"{name}: line {number}: not UTF-8 ({error.reason} at byte {error.start + 1})"
            ) from None
        if "\0" in line:
            raise ValueError(f"{name}: line {number}: binary data (a NUL byte), expected text")
        yield line.rstrip("\r\n")
