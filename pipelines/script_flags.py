"""The command line of every module script (`python -m benchmarks.run`, `python -m
pipelines.anomaly`, ...): absl flags (`--name=value`, `--noname` for a false boolean), as every
`lstm-zoo` command takes them."""

from __future__ import annotations

import sys
from types import SimpleNamespace


def parse(argv, prog, doc, define, positional=()):
    """The flags `define(flags, values)` declares (`flags`: absl.flags; each DEFINE_* call
    passes `flag_values=values`), read from `argv` (default: the process's arguments): a
    namespace of their values, plus one entry per name in `positional` (required arguments,
    in order).
    `--help` prints `doc` and the flags and exits 0; a bad flag or argument exits with one
    line."""
    from absl import flags

    values = flags.FlagValues()
    define(flags, values)
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help", "--helpfull") for arg in argv):
        usage = " ".join([prog, *(name.upper() for name in positional), "[--flags]"])
        print(f"Usage: {usage}\n\n{doc}\nFlags:\n{values.get_help(include_special_flags=False)}")
        raise SystemExit(0)
    try:
        rest = values([prog, *argv])[1:]
    except flags.Error as error:
        raise SystemExit(f"{prog}: error: {error}") from None
    if len(rest) != len(positional):
        expected = " ".join(name.upper() for name in positional) or "flags only"
        raise SystemExit(f"{prog}: error: takes {expected}; received {' '.join(rest) or 'none'}")
    return SimpleNamespace(
        **{name: values[name].value for name in values}, **dict(zip(positional, rest))
    )


def threads(text, flag="--tf_threads"):
    """`flag` INTRA,INTER as two non-negative ints, or SystemExit with one line."""
    try:
        pools = tuple(int(n) for n in text.split(","))
    except ValueError:
        pools = ()
    if len(pools) != 2 or min(pools) < 0:
        raise SystemExit(f"{flag}={text}: expected INTRA,INTER, e.g. 1,2")
    return pools
