"""The core install stays light: task libraries are extras, and a missing one is named."""

import configparser
import pathlib
import subprocess
import sys

from pipelines.train import EXTRAS

ROOT = pathlib.Path(__file__).parents[1]


def test_task_libraries_are_extras_not_core_dependencies():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    core = setup["options"]["install_requires"].lower().replace("_", "-")
    extras = setup["options.extras_require"]
    for module, extra in EXTRAS.items():
        package = {"ai_edge_litert": "ai-edge-litert", "pretty_midi": "pretty-midi"}.get(
            module, module
        )
        assert package not in core, f"{package} is a core dependency"
        assert package in extras[extra].lower().replace("_", "-"), f"{package} not in [{extra}]"
        assert package in extras["all"].lower().replace("_", "-"), f"{package} not in [all]"


def test_core_works_without_the_extras_and_names_the_missing_one():
    blocked = f"sys.modules.update(dict.fromkeys({sorted(EXTRAS)!r}))"
    script = "; ".join(
        [
            "import sys",
            blocked,
            "import zoo, zoo.layers, zoo.models, zoo.decoding, pipelines.text",
            "from pipelines import cli",
            "assert cli.run(['list']) == 0",
            "sys.exit(cli.run(['train', '--task=translation', '--epochs=1']))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lstm-zoo: error:") and "lstm-zoo[translation]" in last, last
    assert "translation" in result.stdout and "not installed" in result.stdout
