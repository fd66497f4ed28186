"""Read-only queries the web UI needs, over a :class:`~mtrec.registry.store.Registry`.

Everything here is SQLAlchemy expressions with bound parameters (never SQL text built from
what a user typed), runs in the registry's own short read transactions, and reads a fixed
number of queries per page whatever the number of runs: one for the page of runs (with its
headline metric joined in), one for the artifacts of that page, a few ``DISTINCT`` ones for
the filter menus.  The store's public methods (``get_run``, ``metrics``) are used where
they already do that.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Float, Text, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from mtrec.registry import report
from mtrec.registry.models import STATUSES, Artifact, Metric, Run
from mtrec.registry.store import Registry

#: The headline metric of the runs table: test NDCG@10, average over domains.
HEADLINE = ("ndcg", 10)
#: Sortable columns of the runs table (the URL's ``sort=``).
SORT_COLUMNS = ("id", "name", "recipe", "dataset", "status", "device", "started", "wall", "ndcg")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
#: A ``running`` run with no sign of life for this long is shown as possibly stale.
DEFAULT_STALE_AFTER = dt.timedelta(hours=24)
MAX_COMPARE = 8


def _process_gone(run: Run) -> bool:
    """The store's stale check (a run of this host whose recorded process has ended), when it has one."""
    from mtrec.registry import store

    check = getattr(store, "_is_stale", None)
    if check is None:
        return False
    try:
        return bool(check(run))
    except Exception:  # noqa: BLE001 - a hint only
        return False


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _like_anywhere(text: str) -> str:
    return "%" + _like_prefix(text)


# ----------------------------------------------------------------------- runs table


@dataclass
class RunFilter:
    recipe: str | None = None
    dataset: str | None = None
    status: str | None = None
    tag: str | None = None
    q: str | None = None  # substring of the id or the name

    def active(self) -> bool:
        return any((self.recipe, self.dataset, self.status, self.tag, self.q))


@dataclass
class RunRow:
    id: str
    name: str | None
    recipe: str
    dataset: str
    status: str
    device: str | None
    host: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    wall_s: float | None
    headline: float | None
    tags: list[str]
    last_update: dt.datetime | None = None
    stale_reason: str = ""  # why a `running` run looks dead; "" when it does not

    @property
    def stale(self) -> bool:
        return bool(self.stale_reason)


@dataclass
class RunsPage:
    rows: list[RunRow]
    total: int  # runs matching the filter
    page: int
    per_page: int
    sort: str
    desc: bool
    all_runs: int  # runs in the registry

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass
class FilterOptions:
    recipes: list[str]
    datasets: list[str]
    statuses: list[str] = field(default_factory=lambda: list(STATUSES))
    tags: list[str] = field(default_factory=list)


class UIQueries:
    """The UI's view of one registry; safe to share between the server's threads."""

    def __init__(self, registry: Registry, *, stale_after: dt.timedelta = DEFAULT_STALE_AFTER) -> None:
        self.reg = registry
        self.stale_after = stale_after

    def _read(self) -> Session:
        return self.reg._read()  # the store's read session (own short transaction per call)

    # ------------------------------------------------------------------ helpers

    def _headline_subquery(self) -> Any:
        """``run_id -> value`` of the latest test/average/ndcg@10 row of each run."""
        name, k = HEADLINE
        latest = (
            select(Metric.run_id.label("run_id"), func.max(Metric.id).label("mid"))
            .where(Metric.split == "test", Metric.domain == report.AVERAGE, Metric.name == name, Metric.k == k)
            .group_by(Metric.run_id)
            .subquery("latest_headline")
        )
        return (
            select(latest.c.run_id.label("run_id"), Metric.value.label("value"))
            .join(Metric, Metric.id == latest.c.mid)
            .subquery("headline")
        )

    def _wall_expr(self) -> Any:
        """Seconds between ``started_at`` and ``ended_at`` as a SQL expression (per backend)."""
        dialect = self.reg._engine.dialect.name
        if dialect == "sqlite":
            return (func.julianday(Run.ended_at) - func.julianday(Run.started_at)) * 86400.0
        if dialect == "postgresql":
            return func.extract("epoch", Run.ended_at - Run.started_at)
        return cast(Run.ended_at, Float) - cast(Run.started_at, Float)  # pragma: no cover - other backends

    @staticmethod
    def _where(f: RunFilter) -> list[Any]:
        conds: list[Any] = []
        if f.recipe:
            conds.append(Run.recipe == f.recipe)
        if f.dataset:
            conds.append(Run.dataset_name == f.dataset)
        if f.status:
            conds.append(Run.status == f.status)
        if f.q:
            pattern = _like_anywhere(f.q)
            conds.append(or_(Run.id.like(pattern, escape="\\"), Run.name.like(pattern, escape="\\")))
        if f.tag:
            # JSON containment differs per backend: a LIKE on the JSON text narrows the rows
            # here (both backends keep the text as written: ["a", "b"]), an exact check follows.
            conds.append(cast(Run.tags, Text()).like(_like_anywhere(json.dumps(f.tag)), escape="\\"))
        return conds

    # -------------------------------------------------------------------- pages

    def runs_page(
        self,
        f: RunFilter,
        *,
        sort: str = "started",
        desc: bool = True,
        page: int = 1,
        per_page: int = DEFAULT_PAGE_SIZE,
    ) -> RunsPage:
        """One page of the runs table, sorted and filtered in the database."""
        if sort not in SORT_COLUMNS:
            sort = "started"
        per_page = per_page if per_page in PAGE_SIZES else DEFAULT_PAGE_SIZE
        page = max(1, page)
        headline = self._headline_subquery()
        order_col = {
            "id": Run.id,
            "name": Run.name,
            "recipe": Run.recipe,
            "dataset": Run.dataset_name,
            "status": Run.status,
            "device": Run.device,
            "started": Run.created_at,
            "wall": self._wall_expr(),
            "ndcg": headline.c.value,
        }[sort]
        ordering = [order_col.desc().nulls_last() if desc else order_col.asc().nulls_last()]
        ordering += [Run.created_at.desc(), Run.id.desc()]
        conds = self._where(f)
        with self._read() as s:
            all_runs = int(s.scalar(select(func.count()).select_from(Run)) or 0)
            if f.tag:
                # the exact tag check needs the rows: read (id, tags) of the matches, in order
                q = select(Run.id, Run.tags).outerjoin(headline, headline.c.run_id == Run.id)
                q = q.where(and_(*conds)).order_by(*ordering)
                ids = [rid for rid, tags in s.execute(q) if f.tag in (tags or [])]
                total = len(ids)
                page_ids = ids[(page - 1) * per_page : page * per_page]
                q = select(Run, headline.c.value).outerjoin(headline, headline.c.run_id == Run.id)
                fetched = {run.id: (run, value) for run, value in s.execute(q.where(Run.id.in_(page_ids)))}
                found = [fetched[i] for i in page_ids if i in fetched]
            else:
                total = int(s.scalar(select(func.count()).select_from(Run).where(and_(*conds))) or 0)
                q = select(Run, headline.c.value).outerjoin(headline, headline.c.run_id == Run.id)
                q = q.where(and_(*conds)).order_by(*ordering).limit(per_page).offset((page - 1) * per_page)
                found = [(run, value) for run, value in s.execute(q)]
            rows = [self._row(run, value) for run, value in found]
            self._mark_stale(s, rows)
        return RunsPage(rows=rows, total=total, page=page, per_page=per_page, sort=sort, desc=desc, all_runs=all_runs)

    @staticmethod
    def _row(run: Run, headline: float | None) -> RunRow:
        row = UIQueries._plain_row(run, headline)
        if run.status == "running" and _process_gone(run):
            row.stale_reason = "its process is gone (killed?)"
        return row

    @staticmethod
    def _plain_row(run: Run, headline: float | None) -> RunRow:
        started, ended = _aware(run.started_at), _aware(run.ended_at)
        wall = None
        if started is not None:
            wall = ((ended or _utcnow()) - started).total_seconds()
        return RunRow(
            id=run.id, name=run.name, recipe=run.recipe, dataset=run.dataset_name, status=run.status,
            device=run.device, host=run.host, started_at=started, ended_at=ended, wall_s=wall,
            headline=headline, tags=list(run.tags or []),
        )

    def _mark_stale(self, s: Session, rows: list[RunRow]) -> None:
        """Mark ``running`` rows whose last sign of life is older than ``stale_after``.

        The last sign of life is the latest of its start and its artifacts' times (metric rows
        carry no time).  One query for the whole page.
        """
        running = [r for r in rows if r.status == "running"]
        if not running:
            return
        q = (
            select(Artifact.run_id, func.max(Artifact.created_at))
            .where(Artifact.run_id.in_([r.id for r in running]))
            .group_by(Artifact.run_id)
        )
        latest = {rid: _aware(when) for rid, when in s.execute(q)}
        now = _utcnow()
        hours = self.stale_after.total_seconds() / 3600
        for r in running:
            times = [t for t in (r.started_at, latest.get(r.id)) if t is not None]
            r.last_update = max(times) if times else None
            if not r.stale_reason and (r.last_update is None or now - r.last_update > self.stale_after):
                r.stale_reason = f"possibly: no sign of life for more than {hours:g} h"

    def is_stale(self, run: dict[str, Any]) -> str:
        """Why a run (a ``get_run`` dict) that is ``running`` looks dead; "" when it does not."""
        if run["status"] != "running":
            return ""
        started = dt.datetime.fromisoformat(run["started_at"]) if run.get("started_at") else None
        row = RunRow(id=run["id"], name=None, recipe="", dataset="", status="running", device=None, host=None,
                     started_at=_aware(started), ended_at=None, wall_s=None, headline=None, tags=[],
                     stale_reason="its process is gone (killed?)" if run.get("stale") else "")
        with self._read() as s:
            self._mark_stale(s, [row])
        return row.stale_reason

    def filter_options(self) -> FilterOptions:
        """The values the filter menus offer (a ``DISTINCT`` query per column)."""
        with self._read() as s:
            recipes = sorted(s.scalars(select(Run.recipe).distinct()))
            datasets = sorted(s.scalars(select(Run.dataset_name).distinct()))
            tag_lists = s.scalars(select(cast(Run.tags, Text())).distinct())
            tags = sorted({t for text in tag_lists if text for t in (json.loads(text) or [])})
        return FilterOptions(recipes=recipes, datasets=datasets, tags=tags)

    # -------------------------------------------------------------------- runs

    def match_ids(self, run_id: str) -> list[str]:
        """Full ids of the run ``run_id`` names: itself, else the runs it is a prefix of (at most 6)."""
        run_id = run_id.strip()
        if not run_id:
            return []
        with self._read() as s:
            if s.get(Run, run_id) is not None:
                return [run_id]
            q = select(Run.id).where(Run.id.like(_like_prefix(run_id), escape="\\")).order_by(Run.id).limit(6)
            return list(s.scalars(q))

    def run(self, run_id: str) -> dict[str, Any]:
        """Everything about one run (full id): the store's ``get_run`` (a query per table)."""
        return self.reg.get_run(run_id)

    def runs(self, run_ids: list[str]) -> list[dict[str, Any]]:
        """Several runs (full ids) with their config, in the given order; one query."""
        with self._read() as s:
            found = {r.id: r for r in s.scalars(select(Run).where(Run.id.in_(run_ids)))}
            out = []
            for rid in run_ids:
                run = found[rid]
                row = dict(self._plain_row(run, None).__dict__)
                row["config"] = run.config
                row["dataset_fingerprint"] = run.dataset_fingerprint
                out.append(row)
        return out

    def metrics(self, run_ids: list[str], **filters: Any) -> list[dict[str, Any]]:
        return self.reg.metrics(run_ids, **filters)


# ------------------------------------------------------------------ run details


@dataclass
class StageInfo:
    name: str
    epochs: int | None = None
    best_epoch: int | None = None
    best_value: float | None = None
    seconds: float | None = None
    # epoch -> value
    loss: dict[int, float] = field(default_factory=dict)
    valid: dict[int, float] = field(default_factory=dict)  # the select metric, average over domains


def run_folder(run: dict[str, Any], reg: Registry | None = None) -> Path | None:
    """The run's own folder on this machine, when it exists.

    The store's ``run_folder`` decides where that is (it refuses a folder that recorded
    artifact paths lead out of) when the store has it; otherwise ``<data dir>/runs/<id>``.
    Recorded artifact paths are never followed themselves.
    """
    folder: Path | None = None
    finder = getattr(reg, "run_folder", None)
    if finder is not None:
        try:
            folder = Path(finder(run["id"]))
        except Exception:  # noqa: BLE001 - RegistryError: refused or unknown; the folder is optional
            return None
    else:
        try:
            from mtrec.engine import runs_root

            folder = runs_root() / run["id"]
        except Exception:  # noqa: BLE001
            return None
    try:
        return folder if folder.is_dir() and not folder.is_symlink() else None
    except OSError:
        return None


def folder_stages(run: dict[str, Any], reg: Registry | None = None) -> list[dict[str, Any]]:
    """The ``stages`` the engine wrote to the run folder's ``metrics.json`` (finished runs on this machine)."""
    folder = run_folder(run, reg)
    if folder is None:
        return []
    path = folder / "metrics.json"
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 64 << 20:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("run_id") not in (None, run["id"]):
        return []
    stages = data.get("stages")
    return stages if isinstance(stages, list) else []


def select_metric(config: dict[str, Any] | None) -> tuple[str, int | None]:
    text = ((config or {}).get("training") or {}).get("select_metric") or "ndcg@10"
    try:
        return report.parse_metric(str(text))
    except Exception:  # noqa: BLE001
        return HEADLINE


def stage_infos(
    run: dict[str, Any], metric: tuple[str, int | None] | None = None, reg: Registry | None = None
) -> list[StageInfo]:
    """Per training stage: epochs, best epoch, seconds, training loss and validation metric by epoch.

    Validation curves come from the registry (split ``valid``, ``step`` = epoch).  Training loss
    comes from registry rows ``split=train, name=loss`` when a run has them, else from the run
    folder's ``metrics.json`` (when the folder is on this machine), which also gives the seconds.
    """
    metric = metric or select_metric(run.get("config"))
    name, k = metric
    infos: dict[str, StageInfo] = {}
    for m in run.get("metrics") or []:
        if m["step"] is None or m["stage"] in ("final", "identifier"):
            continue
        value = m["value"]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if m["split"] == "valid" and m["domain"] == report.AVERAGE and m["name"] == name and m["k"] == k:
            infos.setdefault(m["stage"], StageInfo(m["stage"])).valid[int(m["step"])] = float(value)
        elif m["split"] == "train" and m["name"] == "loss" and m["domain"] in (report.AVERAGE, "all"):
            infos.setdefault(m["stage"], StageInfo(m["stage"])).loss[int(m["step"])] = float(value)
    for st in folder_stages(run, reg) if reg is not None else []:
        if not isinstance(st, dict) or "name" not in st:
            continue
        info = infos.setdefault(str(st["name"]), StageInfo(str(st["name"])))
        info.seconds = _num(st.get("seconds"))
        info.epochs = _int(st.get("epochs_run"))
        info.best_epoch = _int(st.get("best_epoch"))
        info.best_value = _num(st.get("best_value"))
        for row in st.get("history") or []:
            if isinstance(row, dict) and _num(row.get("loss")) is not None and _int(row.get("epoch")) is not None:
                info.loss.setdefault(int(row["epoch"]), float(row["loss"]))
    for info in infos.values():
        epochs = set(info.valid) | set(info.loss)
        if info.epochs is None and epochs:
            info.epochs = max(epochs)
        if info.best_epoch is None and info.valid:
            best = max(info.valid.values())
            info.best_epoch = min(e for e, v in info.valid.items() if v == best)  # the trainer keeps the first best
            info.best_value = best
    return list(infos.values())


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def test_table(metrics: list[dict[str, Any]]) -> tuple[list[tuple[str, int | None]], list[str], dict]:
    """``(metric keys, domains, {(domain, name, k): value})`` of a run's test split."""
    values = report.latest_values([m for m in metrics if m["split"] == "test"])
    keys = sorted({(n, k) for (_, n, k) in values}, key=report.metric_sort_key)
    domains = report.sort_domains(d for (d, _, _) in values)
    return keys, domains, values


def identifier_rows(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Identifier quality rows (stage ``identifier``): codebook usage, collisions, ... per level and domain."""
    rows = [m for m in metrics if m["stage"] == "identifier"]
    rows.sort(key=lambda m: (m["name"], -1 if m["k"] is None else m["k"], m["domain"] != "all", m["domain"]))
    return rows
