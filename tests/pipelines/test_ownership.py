"""The tool removes only what carries its own marker, and only after its refusal checks."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines import cli, locks, rundir, train
from tests.pipelines.test_run_integrity import one_line_error, tiny_flags

ROOT = Path(__file__).parents[2]
HOLD = textwrap.dedent("""
    import sys, time
    from pipelines.locks import RunLock
    with RunLock(sys.argv[1], shared=sys.argv[2] == "shared"):
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder():
    """holder(run_dir, shared) -> a process holding the run's lock until killed."""
    processes = []

    def hold(run_dir, shared=False):
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(run_dir), "shared" if shared else "exclusive"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout.readline().strip() == "held"
        processes.append(process)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture
def trained(tiny):
    train.train(dataclasses.replace(tiny, epochs=1, steps=2, validation_steps=1), verbose=0)
    return tiny.run_dir


def test_a_lock_file_that_is_not_ours_is_kept_and_the_folder_refused(tiny, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".lock").write_text("my own notes\n")
    code = cli.run(tiny_flags(tiny, folder))
    assert "not an lstm-zoo lock file" in one_line_error(capsys, code)
    assert (folder / ".lock").read_text() == "my own notes\n"
    assert os.listdir(folder) == [".lock"]


def test_an_empty_lock_file_of_the_user_is_kept(tiny, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".lock").touch()
    code = cli.run(tiny_flags(tiny, folder))
    assert "not an lstm-zoo lock file" in one_line_error(capsys, code)
    assert os.listdir(folder) == [".lock"]


@pytest.mark.parametrize("other", [None, "notes.txt"])
def test_a_staging_like_folder_that_is_not_ours_is_kept(tiny, tmp_path, capsys, other):
    folder = tmp_path / "mine"
    (folder / ".prepare-photos").mkdir(parents=True)
    (folder / ".prepare-photos" / "a.jpg").write_bytes(b"\xff\xd8")
    if other:
        (folder / other).write_text("keep")
    code = cli.run(tiny_flags(tiny, folder))
    assert "not an lstm-zoo run" in one_line_error(capsys, code)
    assert (folder / ".prepare-photos" / "a.jpg").read_bytes() == b"\xff\xd8"
    assert sorted(os.listdir(folder)) == sorted([".prepare-photos", *([other] if other else [])])


def test_a_killed_attempts_marked_staging_is_removed_once_the_run_is_ours(tiny, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with locks.staging(run_dir) as (folder, _):
        stale = folder + "-killed"
        os.rename(folder, stale)  # what a killed attempt leaves
        os.mkdir(folder)
    train.train(dataclasses.replace(tiny, run_dir=str(run_dir), epochs=1, steps=2), verbose=0)
    assert not os.path.exists(stale)
    assert not [n for n in os.listdir(run_dir) if n.startswith(locks.STAGING_PREFIX)]


def test_a_marked_staging_beside_foreign_files_is_kept_when_refused(tiny, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep")
    with locks.staging(run_dir) as (folder, _):
        os.rename(folder, folder + "-killed")
        os.mkdir(folder)
    code = cli.run(tiny_flags(tiny, run_dir))
    assert "not an lstm-zoo run (notes.txt)" in one_line_error(capsys, code)
    assert len(os.listdir(run_dir)) == 2  # notes.txt and the staging folder, untouched


def test_a_killed_owners_lock_is_free_and_a_live_one_is_named(tiny, tmp_path, holder):
    run_dir = tmp_path / "run"
    owner = holder(run_dir)
    with pytest.raises(FileExistsError, match=f"in use by process {owner.pid}"):
        train.train(dataclasses.replace(tiny, epochs=1, steps=2), verbose=0)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert (run_dir / ".lock").exists()  # left by the killed process, and free
    train.train(dataclasses.replace(tiny, epochs=1, steps=2), verbose=0)
    assert not (run_dir / ".lock").exists()


@pytest.mark.parametrize("command", ["evaluate", "sample", "export"])
def test_readers_wait_for_no_writer_and_writers_for_no_reader(
    trained, holder, capsys, command, tmp_path
):
    writer = holder(trained)
    args = [command, f"--run_dir={trained}"] + (
        [f"--out_dir={tmp_path / 'x'}"] if command == "export" else []
    )
    assert "in use by process" in one_line_error(capsys, cli.run(args))
    writer.kill()
    writer.wait()
    holder(trained, shared=True)  # another reader: readers share
    if command == "evaluate":
        assert cli.run(args) == 0
        capsys.readouterr()
    code = cli.run(["train", f"--run_dir={trained}", "--resume", "--epochs=2"])
    assert "in use by process" in one_line_error(capsys, code)


def test_readers_never_remove_what_appears_in_the_run(trained, monkeypatch):
    """A file that appears while `evaluate` reads the run (as a writer's would) stays."""
    task = train.get_task("text")
    prepare = type(task).prepare

    def prepare_while_a_file_appears(self, config, run_dir, split=True):
        with open(os.path.join(run_dir, "best.keras.new"), "w") as f:
            f.write("a writer's file")
        return prepare(self, config, run_dir, split)

    monkeypatch.setattr(type(task), "prepare", prepare_while_a_file_appears)
    train.evaluate(trained)
    assert os.path.isfile(os.path.join(trained, "best.keras.new"))
    assert not os.path.exists(os.path.join(trained, ".lock"))


def test_a_reader_refuses_a_run_missing_an_input_without_writing(trained, capsys):
    os.remove(os.path.join(trained, "vocab.json"))
    before = sorted(os.listdir(trained))
    code = cli.run(["export", f"--run_dir={trained}", "--format=saved_model"])
    assert "vocab.json: missing from the run directory" in one_line_error(capsys, code)
    assert sorted(os.listdir(trained)) == before


def test_translate_refuses_an_output_that_is_its_input(tmp_path, capsys):
    source = tmp_path / "f.txt"
    source.write_text("In the beginning\n")
    os.symlink(source, tmp_path / "link.txt")
    for output in (source, tmp_path / "link.txt", tmp_path / "." / "f.txt"):
        code = cli.run(
            [
                "translate",
                f"--run_dir={tmp_path / 'run'}",
                f"--input={source}",
                f"--output={output}",
            ]
        )
        assert "is the --input file" in one_line_error(capsys, code, status=2)
    assert source.read_text() == "In the beginning\n"


def test_translate_leaves_the_output_alone_when_it_fails(tmp_path, trained, capsys):
    output = tmp_path / "o.txt"
    output.write_text("yesterday's translations\n")
    for run_dir in (tmp_path / "nowhere", trained):  # missing; not a translation run
        code = cli.run(["translate", f"--run_dir={run_dir}", f"--output={output}"])
        one_line_error(capsys, code)
        assert output.read_text() == "yesterday's translations\n"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_translate_loads_the_run_before_opening_its_input(tmp_path, capsys):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer
    code = cli.run(["translate", f"--run_dir={tmp_path / 'nowhere'}", f"--input={fifo}"])
    assert "config.json: no such file" in one_line_error(capsys, code)


def test_interrupting_a_command_says_so(monkeypatch, capsys):
    def interrupted(values):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.run_command.__globals__["RUNNERS"], "presets", interrupted)
    assert cli.run(["presets"]) == 130
    assert capsys.readouterr().err.strip() == "lstm-zoo: interrupted"


def test_the_lock_is_released_and_removed_after_a_command(trained):
    with rundir.RunLock(trained, shared=True), rundir.RunLock(trained, shared=True):
        assert os.path.isfile(os.path.join(trained, ".lock"))
    assert not os.path.exists(os.path.join(trained, ".lock"))
    with rundir.RunLock(trained):
        with pytest.raises(FileExistsError, match="in use"):
            rundir.RunLock(trained, shared=True).__enter__()
    assert not os.path.exists(os.path.join(trained, ".lock"))
