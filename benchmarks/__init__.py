"""Speed and memory benchmarks of the zoo's cells (run with `python -m benchmarks.run`)."""
