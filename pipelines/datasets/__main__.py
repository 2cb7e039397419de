"""`python -m pipelines.datasets`: see `pipelines.datasets.main`."""

from pipelines.datasets import main

main()
