"""`python -m zoo.cells` prints the Markdown table of registered cells (pasted into README.md)."""

from zoo.cells import table

print(table())
