"""Tables, comparisons and plots of registry runs (used by ``mtrec runs``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtrec.errors import UserError

#: The order metrics are shown in; others follow alphabetically.
METRIC_ORDER = ("recall", "ndcg", "mrr", "hr")
AVERAGE = "average"
_METRIC_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:@\s*(\d+))?\s*$")

MetricKey = tuple[str, "int | None"]


def parse_metric(text: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ``"mrr"`` -> ``("mrr", None)``."""
    m = _METRIC_RE.match(text)
    if not m:
        raise UserError(f"bad metric {text!r}: expected NAME@K (e.g. ndcg@10) or NAME (e.g. mrr)")
    return m.group(1).lower(), (int(m.group(2)) if m.group(2) else None)


def metric_label(name: str, k: int | None) -> str:
    return name if k is None else f"{name}@{k}"


def metric_sort_key(key: tuple[str, int | None]) -> tuple[int, str, int]:
    name, k = key
    rank = METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER)
    return (rank, name, -1 if k is None else k)


def sort_domains(domains: Iterable[str]) -> list[str]:
    """Domains alphabetically, ``average`` last."""
    return sorted(set(domains), key=lambda d: (d == AVERAGE, d))


def fmt_value(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def fmt_time(iso: str | None) -> str:
    """``2025-01-02T03:04:05.678+00:00`` -> ``2025-01-02 03:04:05``."""
    return "-" if not iso else iso[:19].replace("T", " ")


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Iterable[int] = ()) -> str:
    """A plain-text table; columns listed in ``right`` are right-aligned."""
    right = set(right)
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def latest_values(rows: Iterable[dict[str, Any]], stage: str | None = None) -> dict[tuple[str, str, int | None], float]:
    """``{(domain, name, k): value}`` from metric rows of one run and one split.

    With no ``stage``, rows of stage ``final`` win when there are any (the test pass of
    the engine); otherwise every stage counts.  Per key the latest row (highest step,
    then last inserted) is taken.
    """
    rows = list(rows)
    if stage is not None:
        rows = [r for r in rows if r["stage"] == stage]
    elif any(r["stage"] == "final" for r in rows):
        rows = [r for r in rows if r["stage"] == "final"]
    best: dict[tuple[str, str, int | None], tuple[tuple[int, int], float]] = {}
    for i, r in enumerate(rows):
        key = (r["domain"], r["name"], r["k"])
        order = (-1 if r["step"] is None else r["step"], r.get("id", i))
        if key not in best or order >= best[key][0]:
            best[key] = (order, r["value"])
    return {key: v for key, (_, v) in best.items()}


@dataclass
class Comparison:
    """Per-domain metrics of several runs on one split."""

    runs: list[dict[str, Any]]
    split: str
    metrics: list[tuple[str, int | None]]
    domains: list[str]
    values: dict[str, dict[tuple[str, str, int | None], float]] = field(default_factory=dict)

    def value(self, run_id: str, domain: str, metric: tuple[str, int | None]) -> float | None:
        return self.values[run_id].get((domain, *metric))

    def columns(self) -> list[tuple[dict[str, Any], tuple[str, int | None]]]:
        """Columns of the table: run × metric, grouped by metric."""
        return [(run, m) for m in self.metrics for run in self.runs]

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header ``domain, ndcg@10 [1], ndcg@10 [2], ...``: ``[i]`` is the i-th run (see :meth:`legend`)."""
        index = {run["id"]: i + 1 for i, run in enumerate(self.runs)}
        header = ["domain"] + [f"{metric_label(*m)} [{index[run['id']]}]" for run, m in self.columns()]
        rows = [
            [d] + [fmt_value(self.value(run["id"], d, m)) for run, m in self.columns()] for d in self.domains
        ]
        return header, rows

    def legend(self) -> list[list[str]]:
        """Rows ``[i], id, recipe, dataset, status, name`` naming the runs of :meth:`table`."""
        return [
            [f"[{i + 1}]", r["id"], r["recipe"], r["dataset_name"], r["status"], r["name"] or ""]
            for i, r in enumerate(self.runs)
        ]

    def to_json(self) -> dict[str, Any]:
        def clean(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else v

        return {
            "split": self.split,
            "runs": [{k: run[k] for k in ("id", "name", "recipe", "dataset_name", "status")} for run in self.runs],
            "metrics": [metric_label(*m) for m in self.metrics],
            "domains": {
                d: {
                    run["id"]: {metric_label(*m): clean(self.value(run["id"], d, m)) for m in self.metrics}
                    for run in self.runs
                }
                for d in self.domains
            },
        }


def compare(
    reg: Any, run_ids: Sequence[str], metrics: Sequence[str] = (), split: str = "test", stage: str | None = None
) -> Comparison:
    """Collect the per-domain ``split`` metrics of runs (ids or unique prefixes)."""
    runs = []
    seen: set[str] = set()
    for rid in run_ids:
        full = reg.resolve(rid)
        if full not in seen:
            seen.add(full)
            runs.append(reg.get_run(full) | {"metrics": None})
    rows = reg.metrics([r["id"] for r in runs], split=split)
    values = {
        run["id"]: latest_values([r for r in rows if r["run_id"] == run["id"]], stage=stage) for run in runs
    }
    present = {(name, k) for v in values.values() for (_, name, k) in v}
    if metrics:
        wanted = [parse_metric(m) for m in metrics]
        missing = [metric_label(*m) for m in wanted if m not in present]
        if missing and not present:
            raise UserError(f"none of the runs has {split} metrics")
        if missing:
            have = ", ".join(metric_label(*m) for m in sorted(present, key=metric_sort_key))
            raise UserError(f"no run has {split} metric {', '.join(missing)} (they have {have})")
    else:
        if not present:
            raise UserError(
                f"none of the runs {', '.join(r['id'] for r in runs)} has {split} metrics"
                + ("" if stage is None else f" at stage {stage!r}")
            )
        wanted = sorted(present, key=metric_sort_key)
    domains = sort_domains(d for v in values.values() for (d, _, _) in v)
    return Comparison(runs=runs, split=split, metrics=list(wanted), domains=domains, values=values)


def run_label(run: dict[str, Any]) -> str:
    what = run.get("name") or run.get("recipe") or ""
    return f"{run['id']} ({what})" if what else run["id"]


def plot_comparison(cmp: Comparison, path: str | Path) -> Path:
    """A grouped bar chart (one group per domain, one bar per run), one panel per metric.

    Drawn with the Agg canvas directly: no pyplot, no display, no global backend change.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    n_runs, n_dom, n_met = len(cmp.runs), len(cmp.domains), len(cmp.metrics)
    width = max(6.0, 1.2 + n_dom * (0.45 + 0.28 * n_runs))
    fig = Figure(figsize=(width, 2.6 + 2.4 * n_met), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_met, 1, squeeze=False)[:, 0]
    bar = 0.8 / max(n_runs, 1)
    for ax, metric in zip(axes, cmp.metrics):
        for j, run in enumerate(cmp.runs):
            heights = []
            for d in cmp.domains:
                v = cmp.value(run["id"], d, metric)
                heights.append(math.nan if v is None else v)
            xs = [i - 0.4 + bar * (j + 0.5) for i in range(n_dom)]
            ax.bar(xs, heights, width=bar * 0.95, label=run_label(run), color=f"C{j % 10}")
        ax.set_xticks(range(n_dom), cmp.domains)
        ax.set_ylabel(metric_label(*metric))
        ax.set_title(f"{metric_label(*metric)} on {cmp.split}", fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].legend(fontsize="small", loc="best")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=path.suffix.lstrip(".").lower() or "png", dpi=120)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot write the plot {path}: {exc}") from None
    return path
