"""The SWORD zText reader on modules the tests write themselves (and on Debian's, if present)."""

import os
import struct
import zlib

import pytest

from pipelines import sword


def write_ztext(directory, testament, entries, per_block=2):
    """Write `entries` (OSIS strings, "" = no text) as a zText testament, `per_block` per block."""
    os.makedirs(directory, exist_ok=True)
    bzs, bzv, bzz = bytearray(), bytearray(), bytearray()
    for first in range(0, len(entries), per_block):
        block = b""
        for entry in entries[first : first + per_block]:
            data = entry.encode("utf-8")
            bzv += struct.pack("<IIH", first // per_block, len(block), len(data))
            block += data
        compressed = zlib.compress(block)
        bzs += struct.pack("<III", len(bzz), len(compressed), len(block))
        bzz += compressed
    for ext, blob in (("bzs", bzs), ("bzv", bzv), ("bzz", bzz)):
        with open(os.path.join(directory, f"{testament}.{ext}"), "wb") as f:
            f.write(blob)


ENGLISH = [
    "",
    '<title type="main">GENESIS</title>',
    'In the <w lemma="H7225">beginning</w>.',
    'And the earth<note type="study">Or, <hi>land</hi></note> was void &amp; dark.',
    "Verse only in English.",
]
SPANISH = [
    "",
    "<title>GÉNESIS</title>",
    "En el <w>principio</w>.",
    "Y la tierra estaba desordenada y vacía.",
    "",
]


@pytest.fixture
def modules(tmp_path):
    write_ztext(tmp_path / "en", "ot", ENGLISH)
    write_ztext(tmp_path / "en", "nt", ["", "Jesus wept."], per_block=1)
    write_ztext(tmp_path / "es", "ot", SPANISH, per_block=3)
    write_ztext(tmp_path / "es", "nt", ["", "Y lloró Jesús."])
    return str(tmp_path / "en"), str(tmp_path / "es")


def test_reads_entries_by_index(modules):
    english = sword.read_module(modules[0])
    assert english == [
        "",
        "",
        "In the beginning.",
        "And the earth was void & dark.",
        "Verse only in English.",
        "",
        "Jesus wept.",
    ]


def test_osis_markup_notes_and_titles():
    markup = (
        '<div type="x-p"/><title>Heading</title><w lemma="strong:G1">Grace</w> '
        '<note n="a">footnote</note>be &lt;with&gt;   you.<milestone type="x-p"/>'
    )
    assert sword.osis_to_text(markup) == "Grace be <with> you."


def test_pairs_by_index_and_drops_empty_sides(modules):
    assert sword.verse_pairs(*modules) == [
        ("In the beginning.", "En el principio."),
        ("And the earth was void & dark.", "Y la tierra estaba desordenada y vacía."),
        ("Jesus wept.", "Y lloró Jesús."),
    ]


def test_module_found_by_name_in_a_sword_root(tmp_path, modules):
    os.makedirs(tmp_path / "mods.d")
    (tmp_path / "mods.d" / "myKJV.conf").write_text(
        "[MyKJV]\nDataPath=./en/\nModDrv=zText\nCompressType=ZIP\n"
        "History_1.0=first\n continued line\n"
    )
    assert sword.module_dir("mykjv", root=str(tmp_path)) == os.path.normpath(modules[0])
    with pytest.raises(FileNotFoundError, match="'nosuch' not found"):
        sword.module_dir("nosuch", root=str(tmp_path))


def test_mismatched_versifications_and_corrupt_index(tmp_path, modules):
    write_ztext(tmp_path / "short", "ot", ["", "one"])
    with pytest.raises(ValueError, match="different versifications"):
        sword.verse_pairs(modules[0], str(tmp_path / "short"))
    with open(tmp_path / "short" / "ot.bzv", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="not a multiple of 10"):
        sword.read_module(str(tmp_path / "short"))
    with pytest.raises(FileNotFoundError, match="no zText files"):
        sword.read_module(str(tmp_path))


@pytest.mark.skipif(
    not os.path.isdir(os.path.join(sword.SWORD_ROOT, "modules")),
    reason="Debian sword-text-kjv / sword-text-sparv not installed",
)
def test_debian_bible_pairs():
    pairs = sword.verse_pairs()
    assert 30000 < len(pairs) < 31200
    assert pairs[0] == (
        "In the beginning God created the heaven and the earth.",
        "EN el principio crió Dios los cielos y la tierra.",
    )
    assert not any("<" in s or "<" in t for s, t in pairs)
