"""Adding a task is one module and one decorator: `get_task` finds a task of `pipelines` by
its module's name, reading the package's files rather than importing every task."""

import os
import shutil
import subprocess
import sys

import pytest

from pipelines import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = '''
from pipelines.tasks import Task, register_task


@register_task
class ToyTask(Task):
    """A task added as one module."""

    name = "toy"
'''


def test_every_task_module_registers_the_task_it_is_named_after():
    modules = tasks.task_modules()
    assert {
        "text",
        "chorales",
        "melody",
        "translation",
        "speech",
        "moving_shapes",
        "forecast",
        "classify",
    } <= set(modules)
    for name in modules:
        assert tasks.get_task(name).name == name


def test_a_new_module_with_the_decorator_is_a_task(tmp_path):
    shutil.copytree(
        os.path.join(ROOT, "pipelines"),
        tmp_path / "pipelines",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tmp_path / "pipelines" / "toy.py").write_text(TOY)
    script = (
        "from pipelines.tasks import get_task, task_modules; "
        "print(task_modules()['toy'], get_task('toy').name)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT])}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["pipelines.toy", "toy"]


def test_a_task_of_pipelines_lives_in_the_module_named_after_it():
    class Misplaced(tasks.Task):
        name = "elsewhere"

    Misplaced.__module__ = "pipelines.text"
    with pytest.raises(ValueError, match="'elsewhere' is defined in pipelines.text"):
        tasks.register_task(Misplaced)
    assert "elsewhere" not in tasks.TASKS
