import pytest

from pipelines.text import TextConfig

LINES = [
    "To be, or not to be, that is the question.",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
    "Or to take arms against a sea of troubles.",
]


@pytest.fixture
def corpus(tmp_path):
    """A folder of three small UTF-8 documents (one per split)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(3):
        (folder / f"doc{i}.txt").write_text("\n".join(LINES[i:] + LINES[:i]) * 12 + "\nÆsop\n")
    return folder


@pytest.fixture
def tiny(corpus, tmp_path):
    """A `TextConfig` that trains in seconds on `corpus`."""
    return TextConfig(
        data=str(corpus),
        run_dir=str(tmp_path / "run"),
        size="tiny",
        seq_len=16,
        batch_size=8,
        epochs=2,
        steps=10,
        validation_steps=2,
        learning_rate=1e-2,
    )
