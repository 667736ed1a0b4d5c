"""Metrics and the defence table shared by the image experiment and the text study."""

from __future__ import annotations

import numpy as np

from experiments._contract import SeedSweep, markdown_table

DEFENCES = ("none", "eigenshield", "pca", "random")
OURS = "eigenshield"


def _attacks(defence: str) -> tuple[str, ...]:
    # the adaptive attack on no defence is the non-adaptive one
    return ("nonadaptive",) if defence == "none" else ("nonadaptive", "adaptive")


def add_seed_metrics(sweep: SeedSweep, run: dict, seed: int, eps, clean: str = "clean_accuracy") -> None:
    """Clean metric (``{defence}_{clean}``, higher is better) and ASR per defence / eps / attack of one seed's
    ``run`` dict."""
    for n in DEFENCES:
        base = n != OURS
        sweep.add(f"{n}_{clean}", run[f"{n}_{clean}"], seed=seed, baseline=base, higher_is_better=True)
        for e in eps:
            for att in _attacks(n):
                sweep.add(f"{n}_asr_{att}_eps{e}", run[f"{n}_asr_{att}_eps{e}"], seed=seed, baseline=base,
                          higher_is_better=False)


def defence_table(runs: list[dict], eps, eps_label: str = "", clean: str = "clean_accuracy",
                  clean_label: str = "clean acc. (%)") -> str:
    """Markdown: the clean metric and non-adaptive / adaptive ASR (mean ± std over seeds, %) per defence."""

    def cell(key):
        v = np.array([r[key] for r in runs])
        return f"{100 * v.mean():.1f} ± {100 * v.std():.1f}"

    head = ["defence", clean_label] + [f"ASR ε={e}{eps_label} {a} (%)" for e in eps
                                            for a in ("non-adaptive", "adaptive")]
    rows = []
    for n in DEFENCES:
        row = [n, cell(f"{n}_{clean}")]
        for e in eps:
            row += [cell(f"{n}_asr_nonadaptive_eps{e}"), cell(f"{n}_asr_{_attacks(n)[-1]}_eps{e}")]
        rows.append(row)
    return markdown_table(head, rows)
