"""Read SWORD zText Bible modules in pure Python (no libsword) and pair two translations.

A zText module directory holds, per testament (`ot`, `nt`), three files:

    <t>.bzs   one <III record per compressed block: offset and size in .bzz, uncompressed size
    <t>.bzv   one <IIH record per verse index: block number, offset and size in that block
    <t>.bzz   the zlib-compressed blocks, concatenated

Entries are OSIS XML fragments; `osis_to_text` drops notes and headings and strips the markup.
Two modules with the same versification (KJV's, for Debian's `sword-text-kjv` and
`sword-text-sparv`) have the same verse indices, so `verse_pairs` pairs them by index.
"""

from __future__ import annotations

import configparser
import html
import os
import re
import struct
import zlib

SWORD_ROOT = "/usr/share/sword"
# The Debian modules: `sword-text-kjv` (English, KJV) and `sword-text-sparv` (Reina-Valera 1909).
ENGLISH, SPANISH = "engKJV2006eb", "spaRV1909eb"
TESTAMENTS = ("ot", "nt")

_BLOCK = struct.Struct("<III")
_VERSE = struct.Struct("<IIH")
_DROPPED = re.compile(r"<(note|title)\b[^>]*?(?<!/)>.*?</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def module_dir(module, root=SWORD_ROOT):
    """The data directory of `module`: a directory path, or a module name in `root`/mods.d."""
    if os.path.isdir(module):
        return module
    confs = os.path.join(root, "mods.d")
    names = os.listdir(confs) if os.path.isdir(confs) else []
    conf = next(
        (os.path.join(confs, n) for n in names if n.lower() == f"{module.lower()}.conf"),
        os.path.join(confs, f"{module}.conf"),
    )
    if not os.path.isfile(conf):
        raise FileNotFoundError(
            f"SWORD module {module!r} not found: no directory {module!r} and no {conf} "
            "(install it, e.g. `apt-get install sword-text-kjv sword-text-sparv`)"
        )
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    with open(conf, encoding="utf-8", errors="replace") as f:
        parser.read_string("\n".join(line for line in f if not line.startswith(("#", " "))))
    section = parser[parser.sections()[0]]
    driver = section.get("ModDrv", "zText")
    if driver.lower() != "ztext" or section.get("CompressType", "ZIP").upper() != "ZIP":
        raise ValueError(f"{conf}: only zText modules with ZIP compression can be read")
    return os.path.normpath(os.path.join(root, section["DataPath"]))


def read_testament(directory, testament):
    """The raw OSIS entries of one testament of a zText module, by verse index ("" if none)."""
    paths = [os.path.join(directory, f"{testament}.{ext}") for ext in ("bzs", "bzv", "bzz")]
    if not all(os.path.isfile(p) for p in paths):
        return []
    blobs = []
    for path in paths:
        with open(path, "rb") as f:
            blobs.append(f.read())
    bzs, bzv, bzz = blobs
    for path, blob, record in ((paths[0], bzs, _BLOCK), (paths[1], bzv, _VERSE)):
        if len(blob) % record.size:
            raise ValueError(f"{path}: size {len(blob)} is not a multiple of {record.size}")
    blocks = [
        zlib.decompress(bzz[start : start + size]) for start, size, _ in _BLOCK.iter_unpack(bzs)
    ]
    entries = []
    for number, (block, start, size) in enumerate(_VERSE.iter_unpack(bzv)):
        if size == 0:
            entries.append("")
            continue
        if block >= len(blocks):
            raise ValueError(f"{paths[1]}: verse index {number} points to missing block {block}")
        entries.append(blocks[block][start : start + size].decode("utf-8", errors="replace"))
    return entries


def read_module(module, root=SWORD_ROOT):
    """Plain text of every verse index of a zText module (Old then New Testament)."""
    directory = module_dir(module, root)
    entries = [e for t in TESTAMENTS for e in read_testament(directory, t)]
    if not entries:
        raise FileNotFoundError(f"{directory}: no zText files (ot.bzs/bzv/bzz, nt.bzs/bzv/bzz)")
    return [osis_to_text(e) for e in entries]


def osis_to_text(markup):
    """Verse text of an OSIS fragment: notes and titles dropped, tags stripped, spaces squeezed."""
    text = _TAG.sub("", _DROPPED.sub(" ", markup))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def verse_pairs(source=ENGLISH, target=SPANISH, root=SWORD_ROOT):
    """(source, target) verse texts of two modules paired by index; pairs with an empty side
    (headings, missing verses) are dropped."""
    sources, targets = read_module(source, root), read_module(target, root)
    if len(sources) != len(targets):
        raise ValueError(
            f"{source} and {target} have different versifications "
            f"({len(sources)} vs {len(targets)} verse indices)"
        )
    return [(s, t) for s, t in zip(sources, targets) if s and t]
