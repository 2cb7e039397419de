"""The tree is ruff clean (settings in pyproject.toml)."""

import pathlib
import subprocess
import sys


def test_ruff_finds_nothing():
    root = pathlib.Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(root)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
