"""Executed notebooks keep their outputs without TensorFlow's native log lines (the same lines
the command line keeps off the terminal, `pipelines.terminal.is_noise`)."""

from __future__ import annotations

import json
import sys

from pipelines.terminal import is_noise
from zoo.files import atomic_write


def clean_notebook_outputs(paths):
    """Drop TensorFlow's C++ log lines from the stderr outputs of executed notebooks."""
    for path in paths:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        for cell in notebook["cells"]:
            kept = []
            for output in cell.get("outputs", []):
                if output["output_type"] == "stream" and output["name"] == "stderr":
                    lines = [line for line in output["text"] if not is_noise(line)]
                    if not "".join(lines).strip():
                        continue
                    output["text"] = lines
                kept.append(output)
            if "outputs" in cell:
                cell["outputs"] = kept
        atomic_write(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # python -m pipelines.notebook_outputs notebooks/*.ipynb
    clean_notebook_outputs(sys.argv[1:])
