"""The figures of a variant study's analysis (`pipelines.study_report.analyze`): the test
metric per cell as box plots (Greff et al.'s figure 3) and against each searched setting."""

from __future__ import annotations

import numpy as np

from pipelines.figures import new_figure, save_png


def _upper_limit(values, lower_is_better):
    """A y limit that keeps the bulk readable when a few trials are far off (clipped)."""
    values = np.asarray(values)
    low, high = np.percentile(values, [0, 100])
    q1, q3 = np.percentile(values, [25, 75])
    if lower_is_better:
        high = min(high, q3 + 3 * max(q3 - q1, 1e-9))
    return low - 0.03 * (high - low), high + 0.05 * (high - low)


def plot_boxes(results: dict, path):
    """Box plot of the test metric per cell; significantly better/worse cells coloured."""
    cells = [c for c, s in results["cells"].items() if s["finished"]]
    values = [
        [r["value"] for r in results["cells"][c]["records"] if r["value"] is not None]
        for c in cells
    ]
    figure, ax = new_figure(figsize=(max(6, 0.8 * len(cells) + 2), 4.5))
    boxes = ax.boxplot(values, patch_artist=True, showfliers=False)
    colours = {"better": "#7fbf7f", "worse": "#e08080"}
    for patch, cell in zip(boxes["boxes"], cells):
        patch.set_facecolor(colours.get(results["cells"][cell].get("significant"), "#c8d4e8"))
    bottom, top = _upper_limit(np.concatenate(values), results["lower_is_better"])
    rng = np.random.default_rng(0)
    for i, v in enumerate(values, 1):
        v = np.asarray(v)
        ax.scatter(
            i + rng.uniform(-0.15, 0.15, len(v)),
            np.minimum(v, top),
            s=12,
            color="black",
            zorder=3,
            marker="o",
        )
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(1, len(cells) + 1), cells, rotation=45, ha="right")
    ax.axhline(
        np.median(values[cells.index(results["baseline"])])
        if results["baseline"] in cells
        else np.nan,
        ls="--",
        color="grey",
    )
    ax.set_ylabel(f"test {results['metric']}")
    ax.set_title(
        f"{results['study']['task']}: test {results['metric']} per cell "
        f"(green/red: p < {results['alpha']} against {results['baseline']})",
        fontsize=9,
    )
    save_png(figure, path)


def plot_settings(results: dict, path):
    """The test metric against each searched setting, one colour per cell."""
    space = results["study"]["space"]
    if not space:
        return
    records = [r for s in results["cells"].values() for r in s["records"] if r["value"] is not None]
    figure, axes = new_figure(
        1, len(space), figsize=(3.6 * len(space), 3.6), sharey=True, squeeze=False
    )
    bottom, top = _upper_limit([r["value"] for r in records], results["lower_is_better"])
    colours = dict(zip(results["cells"], __import__("matplotlib").colormaps["tab20"].colors))
    for ax, dimension in zip(axes[0], space):
        for cell in results["cells"]:
            mine = [r for r in records if r["cell"] == cell]
            ax.scatter(
                [r["settings"][dimension["name"]] for r in mine],
                [min(r["value"], top) for r in mine],
                s=12,
                color=colours[cell],
                label=cell,
            )
        if dimension["log"]:
            ticks = np.geomspace(dimension["low"], dimension["high"], 4)
            ax.set_xscale("log")
            ax.set_xticks(ticks, [f"{t:.2g}" if t < 1 else f"{t:.0f}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel(dimension["name"])
        ax.set_ylim(bottom, top)
    axes[0][0].set_ylabel(f"test {results['metric']}")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_png(figure, path)
