"""The analysis of a variant study: statistics per cell, tests against the baseline, plots.

`analyze(study_dir)` reads every trial's test metric and writes, next to study.json:

- results.json: per cell the trials (settings, metric, time), their mean, std, median and best,
  and the p-values against the baseline cell: Welch's t-test (unequal variances, as Greff et
  al.) and a paired t-test over the trials both finished (every cell trains trial k with the
  same settings and seed, so the pairs remove most of the hyper-parameter noise);
- results.md: the same as a table, with significant differences (p < 0.05) marked;
- boxplot.png: the test metric per cell (Greff et al.'s figure 3);
- hyperparameters.png: the test metric against each searched setting;
- the fraction of the metric's variance each setting explains, by the zoo's estimator (see
  `variance_fractions`) and by fANOVA (`fanova`, Optuna's maintained implementation), per cell
  and pooled; results.json names each method.

The trials are read from the study's Optuna storage, so any machine that reaches it can write
the analysis.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from pipelines.study import Study, headline
from pipelines.study_plots import plot_boxes, plot_settings
from zoo.files import atomic_write

ALPHA = 0.05  # significance level of the tests
VARIANCE_METHOD = (
    "the zoo's estimator: cell and trial means, polynomial main effects by "
    "adjusted R^2 (see variance_fractions)"
)
FANOVA_METHOD = (
    "fANOVA (Hutter et al. 2014) by optuna.importance.FanovaImportanceEvaluator "
    "(64 trees, seed 0): main-effect fractions of the variance"
)


def collect(study_dir, storage: str | None = None) -> tuple[Study, list[dict], dict]:
    """The study, one record per (cell, trial) with a result in its storage (cell, trial,
    settings, value: the headline test metric, None if the trial failed; failure, seconds,
    cpu_seconds, epochs, best_epoch, host), and what the storage holds besides
    (`study_storage.summary`)."""
    from pipelines import study_storage

    trials = study_storage.connect(study_dir, storage)
    if trials is None or "study" not in trials.user_attrs:
        raise FileNotFoundError(
            f"{study_storage.storage_url(study_dir, storage)}: holds no "
            f"study {os.path.basename(os.path.abspath(study_dir))!r}"
        )
    study = Study(**trials.user_attrs["study"])
    metric, _ = headline(study)
    found = study_storage.results(trials)
    records = []
    for cell, trial in study.grid():
        if (cell, trial) not in found:
            continue
        attrs = found[cell, trial].user_attrs
        value = (attrs.get("test") or {}).get(metric)
        records.append(
            {
                "cell": cell,
                "trial": trial,
                "settings": study.settings(trial),
                "value": value if value is not None and math.isfinite(value) else None,
                "failure": attrs.get("failure"),
                "seconds": attrs.get("seconds"),
                "cpu_seconds": attrs.get("cpu_seconds"),
                "epochs": attrs.get("epochs"),
                "best_epoch": attrs.get("best_epoch"),
                "host": attrs.get("host"),
            }
        )
    return (
        study,
        records,
        study_storage.summary(trials, storage_url=study_storage.storage_url(study_dir, storage)),
    )


def _p_values(values: dict, baseline: dict) -> tuple[float | None, float | None]:
    """(Welch's p, paired p) of {trial: value} against the baseline's; None when undefined."""
    from scipy import stats

    a, b = list(values.values()), list(baseline.values())
    welch = paired = None
    if len(a) >= 2 and len(b) >= 2 and (np.std(a) > 0 or np.std(b) > 0):
        welch = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    common = sorted(set(values) & set(baseline))
    differences = [values[t] - baseline[t] for t in common]
    if len(common) >= 2 and np.std(differences) > 0:
        paired = float(
            stats.ttest_rel([values[t] for t in common], [baseline[t] for t in common]).pvalue
        )
    return welch, paired


def variance_fractions(records: list[dict], study: Study) -> dict:
    """The fraction of the test metric's variance explained by the cell and by each setting.

    A simpler estimator than Greff et al.'s fANOVA (a random forest's functional ANOVA), made
    for this design, where every cell trains the same draws:

    - `cell`: the variance of the cells' means;
    - `trial`: the variance of the trials' means once each cell's mean is removed: everything
      the drawn settings (and the trial's seed) explain, with their interactions;
    - each setting's main effect: the part of `trial` that a polynomial fit of the trial means
      against the setting (its log for log-scaled ones) explains, by adjusted R^2 (degree 2
      from 8 trials, 1 from 4; none below);
    - `interactions`: `trial` less the main effects (never below 0); with few draws the
      settings are correlated and their separate fits overlap: when the main effects add up to
      more than `trial` they are scaled down to it and `overlap_scaled` says by how much;
    - `cell_x_trial`: the rest (a setting acting differently on different cells, seed noise).

    Failed trials are left out. Returns {} for fewer than 3 finished trials.
    """
    finished = [r for r in records if r["value"] is not None]
    values = np.array([r["value"] for r in finished])
    if len(finished) < 3 or float(np.var(values)) == 0:
        return {}
    total = float(np.var(values))
    cells = {r["cell"] for r in finished}
    cell_mean = {c: np.mean([r["value"] for r in finished if r["cell"] == c]) for c in cells}
    centred = {}
    for r in finished:
        centred.setdefault(r["trial"], []).append(r["value"] - cell_mean[r["cell"]])
    trials = sorted(centred)
    weights = np.array([len(centred[t]) for t in trials], dtype=float)
    trial_means = np.array([np.mean(centred[t]) for t in trials])
    between_cells = float(np.var([cell_mean[r["cell"]] for r in finished])) / total
    between_trials = float(np.average(trial_means**2, weights=weights)) / total
    fractions = {"cell": between_cells, "trial": between_trials}
    degree = 2 if len(trials) >= 8 else 1 if len(trials) >= 4 else 0
    main = 0.0
    for dimension in study.space if degree else ():
        x = np.array([study.settings(t)[dimension.name] for t in trials], dtype=float)
        x = np.log(x) if dimension.log else x
        if len(np.unique(x)) <= degree:
            continue
        fit = np.polyval(np.polyfit(x, trial_means, degree, w=np.sqrt(weights)), x)
        spread = np.average(trial_means**2, weights=weights)
        r2 = 1 - np.average((trial_means - fit) ** 2, weights=weights) / spread if spread else 0
        adjusted = max(0.0, 1 - (1 - r2) * (len(trials) - 1) / (len(trials) - degree - 1))
        fractions[dimension.name] = adjusted * between_trials
        main += fractions[dimension.name]
    if main > between_trials:  # few draws: the settings are correlated and their fits overlap
        for dimension in study.space:
            if dimension.name in fractions:
                fractions[dimension.name] *= between_trials / main
        fractions["overlap_scaled"] = main / between_trials
    if degree:
        fractions["interactions"] = max(0.0, between_trials - main)
    fractions["cell_x_trial"] = max(0.0, 1.0 - between_cells - between_trials)
    return {k: round(float(v), 4) for k, v in fractions.items()}


def fanova(records: list[dict], study: Study, min_trials: int = 5) -> dict:
    """fANOVA importances (Hutter, Hoos and Leyton-Brown, "An Efficient Approach for Assessing
    Hyperparameter Importance", ICML 2014), as Greff et al. computed them, by Optuna's
    `FanovaImportanceEvaluator`: a random forest predicts the test metric from the settings,
    and a setting's importance is the variance of its marginal prediction over the total,

        F_j = Var_{x_j}[ E_{x_-j} f(x) ] / Var_x f(x),

    one fraction per setting's main effect (the rest: interactions and noise). Returns
    {"method", "pooled": {"cell": .., setting: ..}, "cells": {cell: {setting: ..}}} for cells
    with `min_trials` finished trials, the pooled forest with the cell as one more factor.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    finished = [r for r in records if r["value"] is not None]
    space = {
        d.name: (
            IntDistribution(int(d.low), int(d.high), log=d.log)
            if d.integer
            else FloatDistribution(d.low, d.high, log=d.log)
        )
        for d in study.space
    }
    cells = [c for c in study.cells if sum(r["cell"] == c for r in finished) >= min_trials]

    def importances(rows, with_cell):
        distributions = {**space, **({"cell": CategoricalDistribution(cells)} if with_cell else {})}
        trials = optuna.create_study()
        for r in rows:
            params = {**r["settings"], **({"cell": r["cell"]} if with_cell else {})}
            trials.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=distributions, value=r["value"]
                )
            )
        fractions = optuna.importance.get_param_importances(
            trials, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), normalize=False
        )
        return {name: round(float(fractions[name]), 4) for name in distributions}

    if not cells or not space:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return {
        "method": FANOVA_METHOD,
        "pooled": importances([r for r in finished if r["cell"] in cells], True),
        "cells": {c: importances([r for r in finished if r["cell"] == c], False) for c in cells},
    }


def analyze(study_dir, storage: str | None = None) -> dict:
    """Statistics, tests and plots of the study in `study_dir` (its trials read from `storage`,
    default the study's; see the module docstring); writes results.json, results.md,
    boxplot.png and hyperparameters.png there."""
    study, records, trials = collect(study_dir, storage)
    metric, lower_is_better = headline(study)
    by_cell = {
        c: {r["trial"]: r["value"] for r in records if r["cell"] == c and r["value"] is not None}
        for c in study.cells
    }
    cells = {}
    for cell in study.cells:
        values = np.array(list(by_cell[cell].values()), dtype=float)
        mine = [r for r in records if r["cell"] == cell]
        summary = {
            "trials": len(mine),
            "finished": len(values),
            "failed": sum(r["value"] is None for r in mine),
        }
        if len(values):
            summary.update(
                mean=float(values.mean()),
                std=float(values.std(ddof=1)) if len(values) > 1 else None,
                median=float(np.median(values)),
                best=float(values.min() if lower_is_better else values.max()),
            )
        if cell != study.reference:
            welch, paired = _p_values(by_cell[cell], by_cell[study.reference])
            summary.update(p_value=welch, paired_p_value=paired)
            if welch is not None and welch < ALPHA:
                lower = summary["mean"] < np.mean(list(by_cell[study.reference].values()))
                summary["significant"] = "better" if lower == lower_is_better else "worse"
        summary["records"] = mine
        cells[cell] = summary
    results = {
        "study": json.loads(study.to_json()),
        "baseline": study.reference,
        "metric": metric,
        "lower_is_better": lower_is_better,
        "alpha": ALPHA,
        "cells": cells,
        "variance": variance_fractions(records, study),
        "variance_method": VARIANCE_METHOD,
        "fanova": fanova(records, study),
        "cpu_minutes": round(sum(r["cpu_seconds"] or 0 for r in records) / 60, 1),
        "trials": trials,
    }
    atomic_write(os.path.join(study_dir, "results.json"), json.dumps(results, indent=2))
    atomic_write(os.path.join(study_dir, "results.md"), markdown(results))
    if any(r["value"] is not None for r in records):
        plot_boxes(results, os.path.join(study_dir, "boxplot.png"))
        plot_settings(results, os.path.join(study_dir, "hyperparameters.png"))
    return results


def _number(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def _p(value):
    return "-" if value is None else f"{value:.2g}"


def _done(results) -> str:
    """ "30", or "19-20 of 30" for a study not trained to the end yet."""
    done = [s["trials"] for s in results["cells"].values()]
    planned = results["study"]["trials"]
    if min(done) == planned:
        return str(planned)
    return (
        f"{min(done)}-{max(done)} of {planned}"
        if min(done) != max(done)
        else f"{min(done)} of {planned}"
    )


def markdown(results: dict) -> str:
    """results.md: the study's settings, the table per cell and the variance fractions."""
    study, metric = results["study"], results["metric"]
    direction = "lower" if results["lower_is_better"] else "higher"
    fixed = " ".join(f"--{k}={v}" for k, v in study["fixed"].items())
    space = ", ".join(
        f"{d['name']} in [{d['low']:g}, {d['high']:g}]{' (log)' if d['log'] else ''}"
        for d in study["space"]
    )
    lines = [
        f"# Variant study: {study['task']}, test {metric} ({direction} is better)",
        "",
        f"Fixed settings: `{fixed or 'the task defaults'}`; searched: {space}; "
        f"{_done(results)} trials per cell (seed {study['seed']}), "
        f"{results['cpu_minutes']} CPU-minutes in all.",
        "",
        f"p: Welch's t-test against `{results['baseline']}`; paired: paired t-test over "
        f"the same trials; **bold** = significant (p < {results['alpha']}).",
        "",
        "| cell | trials | mean | std | median | best | p | paired p |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell, s in results["cells"].items():
        name = f"`{cell}`" + (" (baseline)" if cell == results["baseline"] else "")
        mean = _number(s.get("mean"))
        if s.get("significant"):
            mean = f"**{mean}** ({s['significant']})"
        failed = f" ({s['failed']} failed)" if s["failed"] else ""
        lines.append(
            f"| {name} | {s['finished']}{failed} | {mean} | {_number(s.get('std'))} | "
            f"{_number(s.get('median'))} | {_number(s.get('best'))} | "
            f"{_p(s.get('p_value'))} | {_p(s.get('paired_p_value'))} |"
        )
    if results["variance"]:
        lines += [
            "",
            "Fraction of the variance of the test metric explained by the cell, by "
            "the trial (its drawn settings and seed), by each setting's main effect "
            "(part of the trial's), by their interactions, and by a setting acting "
            "differently on different cells or seed noise (cell_x_trial):",
            "",
            "| factor | fraction |",
            "| --- | ---: |",
        ]
        lines += [
            f"| {k} | {v:.2f} |" for k, v in results["variance"].items() if k != "overlap_scaled"
        ]
        if "overlap_scaled" in results["variance"]:
            lines += [
                "",
                "With this few draws the settings are correlated: their separate "
                "fits overlapped (by a factor of "
                f"{results['variance']['overlap_scaled']:.2f}) and were scaled down to "
                "the trial's share.",
            ]
    if results.get("fanova"):
        lines += fanova_table(results["fanova"])
    return "\n".join(lines) + "\n"


def fanova_table(fanova: dict) -> list[str]:
    """results.md's fANOVA rows: pooled (with the cell as a factor), then one per cell."""
    names = list(fanova["pooled"])
    rows = [("pooled", fanova["pooled"])] + [(f"`{c}`", v) for c, v in fanova["cells"].items()]
    return [
        "",
        "fANOVA (Hutter et al. 2014, as Greff et al.; "
        "`optuna.importance.FanovaImportanceEvaluator`): the fraction of the test metric's "
        "variance each setting's main effect explains, over all cells (the cell one more "
        "factor) and within each cell; the rest is interactions and noise:",
        "",
        "| trials of | " + " | ".join(names) + " | rest |",
        "| --- |" + " ---: |" * (len(names) + 1),
    ] + [
        f"| {name} | "
        + " | ".join(f"{shares.get(n, 0):.2f}" if n in shares else "-" for n in names)
        + f" | {max(0.0, 1 - sum(shares.values())):.2f} |"
        for name, shares in rows
    ]
