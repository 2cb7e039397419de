"""The benchmark report: results.json, the markdown tables of results.md, results.png."""

from __future__ import annotations

import json
import os

from benchmarks import pipelines
from pipelines.figures import new_figure, save_png
from zoo.files import atomic_write

VOCAB, EMBED = 96, 64  # the char-LM of every training case


def _ratio(row, base):
    if base is None:
        return ""
    return f"{row['tokens_per_s']['median'] / base['tokens_per_s']['median']:.2f}x"


def markdown(report):
    m, s = report["machine"], report["settings"]
    peak = report["peak_gflops"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; {m['versions']}; {m['date']}; "
        f"load average {m['load_average_at_start']:.1f} at start. Char-LM (Embedding {EMBED}, "
        f"layer, Dense {VOCAB}), batch {s['batch']}, length {s['length']}, fwd+bwd+Adam; "
        f"medians of {s.get('rounds', 1)} round(s) x {s['repeats']} x {s['steps']} steps "
        f"(min-max), rounds interleaved over the cases; tokens/CPU-s counts all "
        f"threads' CPU time (less distorted by other load). float32 matmul peak "
        f"{peak:.0f} GFLOP/s (the best measured below).",
        "",
    ]
    for units in sorted({r["units"] for r in report["training"]}):
        rows = [r for r in report["training"] if r["units"] == units]
        find = {(r["model"], r["cell"], r["precision"]): r for r in rows}
        keras_lstm = find.get(("keras", "lstm", "float32"))
        torch_lstm = find.get(("torch", "lstm", "float32"))
        lines += [
            f"H={units} | tokens/s (min-max) | vs keras.LSTM | vs torch.LSTM | tokens/CPU-s | "
            "GFLOP/s | of peak | loss | train MiB",
            "---|---|---|---|---|---|---|---|---",
        ]
        for r in rows:
            t = r["tokens_per_s"]
            lines.append(
                f"{r['label']} | {t['median']:,.0f} ({t['min']:,.0f}-{t['max']:,.0f}) | "
                f"{_ratio(r, keras_lstm)} | {_ratio(r, torch_lstm)} | "
                f"{r['tokens_per_cpu_s']:,.0f} | {r['gflops']:.1f} | "
                f"{r['gflops'] / peak:.0%} | {r['loss']:.3f} | {r['train_mib']}"
            )
        lines += _best_precision(find, units)
        lines.append("")
    for title, key, unit in (
        ("Matmul", "matmul", "GFLOP/s"),
        ("Generation step, batch 1", "latency", "µs"),
    ):
        if report.get(key):
            lines += [f"{title} | {unit}", "---|---"]
            lines += [f"{name} | {value:,.1f}" for name, value in report[key].items()]
            lines.append("")
    if report.get("pipelines"):
        lines += [
            "tf.data: each task's training stream against its model's training rate "
            "(default configs; ratio = stream / model, aim 10x)",
            "",
            pipelines.markdown(report["pipelines"]),
            "",
        ]
    return "\n".join(lines)


def _best_precision(find, units):
    """One line per cell: the zoo's and torch's fastest precision, and their ratio."""
    lines = []
    for cell in ("lstm", "gru"):
        best = {
            model: max(
                (find[k] for k in find if k[0] == model and k[1] == cell),
                key=lambda r: r["tokens_per_s"]["median"],
                default=None,
            )
            for model in ("zoo", "torch")
        }
        if best["zoo"] and best["torch"]:
            zoo_rate, torch_rate = (best[m]["tokens_per_s"]["median"] for m in ("zoo", "torch"))
            lines.append(
                f"best precision, H={units}: zoo {cell} {best['zoo']['precision']} "
                f"{zoo_rate:,.0f} against torch {best['torch']['precision']} "
                f"{torch_rate:,.0f} tokens/s: {zoo_rate / torch_rate:.2f}x"
            )
    return lines


def chart(report, path):
    sizes = sorted({r["units"] for r in report["training"]})
    labels = list(dict.fromkeys(r["label"] for r in report["training"]))
    fig, axes = new_figure(
        1, len(sizes), figsize=(6 * len(sizes), 0.3 * len(labels) + 1.5), squeeze=False, sharey=True
    )
    for ax, units in zip(axes[0], sizes):
        rows = {r["label"]: r["tokens_per_s"] for r in report["training"] if r["units"] == units}
        medians = [rows[label]["median"] if label in rows else 0 for label in labels]
        errors = [
            [m - rows[label]["min"] if label in rows else 0 for label, m in zip(labels, medians)],
            [rows[label]["max"] - m if label in rows else 0 for label, m in zip(labels, medians)],
        ]
        colors = [
            "tab:gray" if label.startswith(("keras.", "torch.")) else "tab:blue" for label in labels
        ]
        ax.barh(labels, medians, xerr=errors, color=colors)
        ax.set_title(f"training tokens/s, H={units}")
    axes[0][0].invert_yaxis()  # shared: once for all
    fig.tight_layout()
    save_png(fig, path, tight=False)


def save(report, out):
    """Write results.json, results.md (returned) and results.png into `out`."""
    atomic_write(os.path.join(out, "results.json"), json.dumps(report, indent=1))
    table = markdown(report)
    atomic_write(os.path.join(out, "results.md"), table + "\n")
    chart(report, os.path.join(out, "results.png"))
    return table
