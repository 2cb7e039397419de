"""TensorFlow Datasets builders over the local corpora (manual_dir, no network)."""
