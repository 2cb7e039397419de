"""Data pipelines, training, evaluation and the `lstm-zoo` command line. Depends on zoo."""
