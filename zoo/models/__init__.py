"""Task models that accept any registered cell."""
