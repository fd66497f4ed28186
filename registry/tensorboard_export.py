"""``mtrec runs export ID... --format tensorboard --out DIR``: registry runs as TensorBoard event files.

Each run becomes ``DIR/<run id>/`` holding one event file (written with
``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package), so
``tensorboard --logdir DIR`` shows the runs side by side:

* ``<stage>/valid/<domain>/<metric>`` at step = epoch: the validation curves of every
  training stage (what the registry records per epoch);
* ``<stage>/train/loss`` at step = epoch: the training loss, from registry rows
  ``split=train, name=loss`` when present, else from the run folder's ``metrics.json``
  when that folder is on this machine (the store's ``run_folder``);
* ``test/<domain>/<metric>`` (step 0): the final test metrics;
* ``identifier/<name>[/L<level>][/<domain>]`` (step 0): identifier quality, when recorded;
* hparams: the flat resolved config (dotted keys), with the test averages as its metrics.

Metric rows without a step other than the ones above (e.g. a stage's one-off training
statistics) are written at step 0 as ``<stage>/<split>/<domain>/<metric>``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mtrec.errors import UserError

from . import report

_UNSAFE = re.compile(r"[^A-Za-z0-9._@:\-]+")


def _part(text: str) -> str:
    """A tag component: no slashes or spaces (TensorBoard groups tags by their first ``/``)."""
    return _UNSAFE.sub("_", str(text)) or "_"


def metric_tag(row: dict[str, Any]) -> tuple[str, int]:
    """``(tag, step)`` under which a registry metric row is written."""
    label = _part(report.metric_label(row["name"], row["k"]))
    stage, split, domain = _part(row["stage"]), _part(row["split"]), _part(row["domain"])
    if row["stage"] == "identifier":
        parts = ["identifier", _part(row["name"])]
        if row["k"] is not None:
            parts.append(f"L{row['k']}")
        if row["domain"] not in ("all", None):
            parts.append(domain)
        return "/".join(parts), 0
    if row["split"] == "test" and row["stage"] == "final":
        return f"test/{domain}/{label}", 0
    if row["split"] == "train" and row["name"] == "loss" and row["domain"] in ("all", report.AVERAGE):
        return f"{stage}/train/loss", int(row["step"] or 0)
    return f"{stage}/{split}/{domain}/{label}", int(row["step"] or 0)


def hparam_value(value: Any) -> int | float | str | bool:
    """A config value as TensorBoard's hparams plugin takes it (lists, dicts and None as text)."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return json.dumps(value, sort_keys=True)


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch imports tensorboard lazily and says so
        raise UserError(
            f"exporting to TensorBoard needs the 'tensorboard' package ({exc}): pip install 'mtrec[ui]' "
            "or pip install tensorboard"
        ) from None
    return SummaryWriter


def _check_empty(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not an empty folder: export into another --out folder "
                        "(or remove it)")


def export_run(run: dict[str, Any], out_dir: Path, reg: Any = None) -> Path:
    """Write one run (a ``Registry.get_run`` dict) to ``out_dir/<id>``; return that folder."""
    from torch.utils.tensorboard.summary import hparams

    from mtrec.config import flat_config

    from .ui.queries import folder_stages

    SummaryWriter = _summary_writer()
    target = out_dir / run["id"]
    _check_empty(target)
    rows = list(run["metrics"])
    # keep, per (tag, step), the last row (a resumed epoch may be logged twice)
    scalars: dict[tuple[str, int], float] = {}
    for m in rows:
        value = m["value"]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        scalars[metric_tag(m)] = float(value)
    have_loss = {tag.split("/train/loss")[0] for tag, _ in scalars if tag.endswith("/train/loss")}
    for stage in folder_stages(run, reg):
        name = _part(stage.get("name", ""))
        if name in have_loss:
            continue
        for row in stage.get("history") or []:
            loss = row.get("loss") if isinstance(row, dict) else None
            if isinstance(loss, (int, float)) and math.isfinite(loss) and isinstance(row.get("epoch"), int):
                scalars[(f"{name}/train/loss", row["epoch"])] = float(loss)
    config = flat_config(run.get("config") or {})
    hp = {key: hparam_value(v) for key, v in sorted(config.items())}
    hp.update({"run.id": run["id"], "run.recipe": run["recipe"], "run.status": run["status"],
               "run.dataset": run["dataset_name"]})
    test_avg = {tag: v for (tag, _), v in scalars.items() if tag.startswith(f"test/{report.AVERAGE}/")}
    target.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(target))
    try:
        for (tag, step), value in sorted(scalars.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            writer.add_scalar(tag, value, global_step=step)
        exp, ssi, sei = hparams(hp, test_avg)
        for summary in (exp, ssi, sei):
            writer.file_writer.add_summary(summary)
        text = "\n".join(
            f"    {k}: {v}" for k, v in (("id", run["id"]), ("name", run["name"]), ("recipe", run["recipe"]),
                                          ("status", run["status"]), ("dataset", run["dataset_name"]),
                                          ("started", run["started_at"]), ("ended", run["ended_at"]))
        )
        writer.add_text("run", text)
        writer.flush()
    finally:
        writer.close()
    return target


def export_runs(reg: Any, run_ids: Sequence[str] | Iterable[str], out_dir: str | Path) -> list[Path]:
    """Export runs (ids or unique prefixes) of a registry to ``out_dir``; return their folders."""
    out = Path(out_dir).expanduser()
    full = list(dict.fromkeys(reg.resolve(r) for r in run_ids))  # unknown ids fail before anything is written
    _summary_writer()
    for rid in full:  # refuse before writing anything
        _check_empty(out / rid)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    return [export_run(reg.get_run(rid), out, reg) for rid in full]
