"""The ``mtrec ui`` web app: a Starlette application over one registry, read-only.

Pages (all ``GET``; the app has no route that writes):

* ``/``: the runs table, filtered, sorted and paginated in the database;
* ``/runs/{id}``: one run (an id or a unique prefix);
* ``/compare?ids=A&ids=B...``: 2 to 8 runs side by side.

Templates are Jinja2 (autoescaped), charts are SVG drawn on the server
(:mod:`mtrec.registry.ui.charts`) and the stylesheet ships in ``static/``: a page needs
nothing from the internet.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mtrec.config import config_differences, flat_config
from mtrec.errors import UserError
from mtrec.registry import report
from mtrec.registry.models import STATUSES
from mtrec.registry.store import Registry

from . import charts, queries

HERE = Path(__file__).resolve().parent
#: Line styles of a run's successive stages in the overlaid validation curves.
_DASHES = ("", "6 3", "2 3", "9 3 2 3")


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt_value"] = report.fmt_value
    env.filters["fmt_bytes"] = report.fmt_bytes
    env.filters["fmt_dt"] = _fmt_dt
    env.filters["fmt_seconds"] = _fmt_seconds
    env.globals["metric_label"] = report.metric_label
    return env


def _fmt_dt(value: dt.datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return report.fmt_time(value)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_seconds(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    s = float(value)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    if s < 86400 * 2:
        return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
    return f"{s / 86400:.1f} d"


def _int_param(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


def _config_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return v
    import json

    return json.dumps(v)


class UIApp:
    """Request handlers bound to one registry."""

    def __init__(self, registry: Registry, *, stale_after: dt.timedelta = queries.DEFAULT_STALE_AFTER) -> None:
        self.q = queries.UIQueries(registry, stale_after=stale_after)
        self.registry_url = registry.url
        self.env = _env()

    def render(self, request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request, registry_url=self.registry_url, **ctx
        )
        return HTMLResponse(html, status_code=status_code)

    # ------------------------------------------------------------------ runs

    def runs_page(self, request: Request) -> Response:
        qp = request.query_params
        status = qp.get("status") or None
        f = queries.RunFilter(
            recipe=qp.get("recipe") or None,
            dataset=qp.get("dataset") or None,
            status=status if status in STATUSES else None,
            tag=qp.get("tag") or None,
            q=(qp.get("q") or "").strip() or None,
        )
        sort = qp.get("sort") or "started"
        desc = (qp.get("order") or "desc") != "asc"
        per_page = _int_param(request, "per_page", queries.DEFAULT_PAGE_SIZE)
        page = self.q.runs_page(f, sort=sort, desc=desc, page=_int_param(request, "page", 1), per_page=per_page)
        base = {k: v for k, v in (("recipe", f.recipe), ("dataset", f.dataset), ("status", f.status),
                                  ("tag", f.tag), ("q", f.q)) if v}
        if page.per_page != queries.DEFAULT_PAGE_SIZE:
            base["per_page"] = str(page.per_page)

        def sort_link(col: str) -> str:
            order = "asc" if (page.sort == col and page.desc) else "desc"
            return "?" + urlencode({**base, "sort": col, "order": order})

        def page_link(n: int) -> str:
            return "?" + urlencode({**base, "sort": page.sort, "order": "desc" if page.desc else "asc", "page": n})

        return self.render(
            request, "runs.html", page=page, filt=f, options=self.q.filter_options(), sort_link=sort_link,
            page_link=page_link, headline=report.metric_label(*queries.HEADLINE), page_sizes=queries.PAGE_SIZES,
            stale_hours=self.q.stale_after.total_seconds() / 3600,
        )

    # ------------------------------------------------------------------- run

    def _resolve(self, run_id: str) -> str:
        matches = self.q.match_ids(run_id)
        if not matches:
            raise HTTPException(404, f"no run {run_id!r} in the experiment registry at {self.registry_url}")
        if len(matches) > 1:
            more = ", ..." if len(matches) > 5 else ""
            raise HTTPException(404, f"run id prefix {run_id!r} is ambiguous: it matches "
                                     f"{', '.join(matches[:5])}{more}")
        return matches[0]

    def run_page(self, request: Request) -> Response:
        asked = request.path_params["run_id"]
        run_id = self._resolve(asked)
        if run_id != asked:
            return RedirectResponse(request.url_for("run", run_id=run_id), status_code=302)
        run = self.q.run(run_id)
        metric = queries.select_metric(run["config"])
        stages = queries.stage_infos(run, metric, self.q.reg)
        keys, domains, values = queries.test_table(run["metrics"])
        label = report.metric_label(*metric)
        curves = []
        for st in stages:
            loss = charts.line_chart(
                [charts.Series("training loss", sorted(st.loss.items()), key="loss")],
                title=f"{st.name}: training loss", y_label="loss",
                css_class="chart curve loss", attrs={"data-stage": st.name, "data-kind": "loss"},
            ) if st.loss else None
            valid = charts.line_chart(
                [charts.Series(f"valid {label} (average)", sorted(st.valid.items()), key="valid")],
                title=f"{st.name}: validation {label}", y_label=label,
                css_class="chart curve valid", attrs={"data-stage": st.name, "data-kind": "valid"},
            ) if st.valid else None
            curves.append((st, loss, valid))
        stale = self.q.is_stale(run)
        config_flat = sorted(flat_config(run["config"] or {}).items())
        return self.render(
            request, "run.html", run=run, stages=stages, curves=curves, keys=keys, domains=domains,
            values=values, metric_label_sel=label, identifier=queries.identifier_rows(run["metrics"]),
            config_flat=[(k, _config_value(v)) for k, v in config_flat], stale=stale,
            folder=queries.run_folder(run, self.q.reg), longest=max((st.seconds or 0.0 for st in stages), default=0.0),
        )

    # --------------------------------------------------------------- compare

    def compare_page(self, request: Request) -> Response:
        raw = [part.strip() for v in request.query_params.getlist("ids") for part in v.split(",")]
        asked = list(dict.fromkeys(p for p in raw if p))
        if not 2 <= len(asked) <= queries.MAX_COMPARE:
            raise HTTPException(400, f"compare takes 2 to {queries.MAX_COMPARE} runs; got {len(asked)} "
                                     "(tick them in the runs table)")
        ids = list(dict.fromkeys(self._resolve(a) for a in asked))
        if len(ids) < 2:
            raise HTTPException(400, "compare needs two different runs")
        runs = self.q.runs(ids)
        rows = self.q.metrics(ids)
        by_run: dict[str, list[dict[str, Any]]] = {rid: [] for rid in ids}
        for m in rows:
            by_run[m["run_id"]].append(m)
        for r in runs:
            r["label"] = report.run_label(r)
        # test metrics: one grouped bar chart per metric
        tests = {rid: report.latest_values([m for m in ms if m["split"] == "test"]) for rid, ms in by_run.items()}
        keys = sorted({(n, k) for v in tests.values() for (_, n, k) in v}, key=report.metric_sort_key)
        domains = report.sort_domains(d for v in tests.values() for (d, _, _) in v)
        wanted = request.query_params.get("metric")
        if wanted:
            try:
                parsed = report.parse_metric(wanted)
            except UserError as exc:
                raise HTTPException(400, str(exc)) from None
            keys = [k for k in keys if k == parsed] or keys
        bars = [
            charts.bar_chart(
                domains,
                [(f"[{i + 1}] {r['label']}", [tests[r["id"]].get((d, *key)) for d in domains])
                 for i, r in enumerate(runs)],
                title=f"test {report.metric_label(*key)} per domain", y_label=report.metric_label(*key),
                attrs={"data-metric": report.metric_label(*key)},
            )
            for key in keys
        ]
        # validation curves of every stage of every run, overlaid
        metric = queries.select_metric(runs[0]["config"])
        series = []
        for i, r in enumerate(runs):
            stages = [st for st in queries.stage_infos({**r, "metrics": by_run[r["id"]], "artifacts": []}, metric)
                      if st.valid]
            for j, st in enumerate(stages):  # a colour per run, a line style per stage
                series.append(charts.Series(f"[{i + 1}] {st.name}", sorted(st.valid.items()),
                                            key=f"{r['id']}:{st.name}", dashed=_DASHES[j % len(_DASHES)],
                                            color_index=i))
        label = report.metric_label(*metric)
        curves = charts.line_chart(series, title=f"validation {label} (average over domains) by epoch",
                                   y_label=label, width=760, height=280, css_class="chart curve overlay")
        # config keys that differ (from the first run to each other one)
        diff: set[str] = set()
        for r in runs[1:]:
            diff |= config_differences(runs[0]["config"] or {}, r["config"] or {})
        flats = [flat_config(r["config"] or {}) for r in runs]
        differing = [(key, [_config_value(f.get(key)) if key in f else "(absent)" for f in flats])
                     for key in sorted(diff)]
        datasets = {(r["dataset"], r["dataset_fingerprint"]) for r in runs}
        return self.render(request, "compare.html", runs=runs, bars=bars, curves=curves, differing=differing,
                           has_curves=bool(series), keys=keys, different_data=len(datasets) > 1)

    # ---------------------------------------------------------------- errors

    async def http_error(self, request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", None) or "error"
        if code == 404 and detail == "Not Found":
            detail = f"no page {request.url.path}"
        return self.render(request, "error.html", status_code=code, code=code, message=detail)

    async def registry_error(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "error.html", status_code=503, code=503, message=str(exc))


def create_app(registry: Registry, *, stale_after: dt.timedelta = queries.DEFAULT_STALE_AFTER) -> Starlette:
    """The ASGI app over an open registry (the caller keeps it open while the app serves)."""
    ui = UIApp(registry, stale_after=stale_after)
    routes = [
        Route("/", ui.runs_page, name="runs", methods=["GET"]),
        Route("/runs/{run_id:str}", ui.run_page, name="run", methods=["GET"]),
        Route("/compare", ui.compare_page, name="compare", methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: ui.http_error, UserError: ui.registry_error},
    )
