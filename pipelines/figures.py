"""Figures for the files the tool writes: a matplotlib `Figure` outside pyplot (no global
backend switch, so a notebook's inline plots keep working, and nothing to close), saved as a
PNG atomically."""

from __future__ import annotations

from zoo.files import atomic_path


def new_figure(rows=1, columns=1, figsize=None, **subplots):
    """(figure, axes) of a `matplotlib.figure.Figure` of `figsize` inches, with `rows` x
    `columns` axes (`subplots`: matplotlib's `Figure.subplots` arguments, e.g. `sharey`)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, **subplots)


def save_png(figure, path, dpi=100, tight=True):
    """Write `figure` to `path` as a PNG (atomically: a reader never sees half a file);
    returns `path`. `tight` crops the white margin."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return path
