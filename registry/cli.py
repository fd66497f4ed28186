"""``mtrec runs ...``: list, show, compare, export and delete recorded runs.

``runs`` is a click group; ``mtrec.cli`` attaches it to the ``mtrec`` command.  It also
works on its own (``python -m mtrec.registry.cli``): then a :class:`UserError` prints
``error: <message>`` and exits with code 2, as ``mtrec`` does.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mtrec.errors import UserError
from mtrec.files import strict_json_text

from . import report
from .models import STATUSES
from .store import Registry, mask_url, normalize_url, open_registry, resolve_url

_REGISTRY_KEY = "mtrec.registry.url"


class RunsGroup(click.Group):
    """Prints UserError as one line and exits 2 when used standalone.

    Under the ``mtrec`` group the error propagates, so ``mtrec --debug`` still shows it
    with its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if ctx.parent is not None:
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _registry_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--registry",
        "registry_url",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL (or SQLite file) of the registry [default: $MTREC_REGISTRY_URL, else the "
        "SQLite file shown by `mtrec runs where`].",
    )(fn)


def _url(registry_url: str | None) -> str | None:
    if registry_url:
        return registry_url
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_REGISTRY_KEY) if ctx is not None else None


def _open(registry_url: str | None) -> Registry:
    reg = open_registry(_url(registry_url))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(reg.close)
    return reg


@click.group(cls=RunsGroup)
@click.option("--registry", "registry_url", metavar="URL", default=None,
              help="Registry URL for every command below (a command's own --registry wins).")
@click.pass_context
def runs(ctx: click.Context, registry_url: str | None) -> None:
    """Runs recorded in the experiment registry.

    \b
    The registry is $MTREC_REGISTRY_URL, else a SQLite file (`mtrec runs where`).
    Run ids may be shortened to any unique prefix.
    """
    if registry_url:
        ctx.meta[_REGISTRY_KEY] = registry_url


# --------------------------------------------------------------------------- list


@runs.command("list")
@click.option("--recipe", help="Only runs of this recipe (method).")
@click.option("--dataset", help="Only runs on this dataset.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--tag", help="Only runs with this tag.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Show at most N runs (newest first; 0 = all).")
@click.option("--metric", default="ndcg@10", show_default=True,
              help="Test metric (average over domains) shown in the table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_registry_option
def list_cmd(recipe, dataset, status, tag, limit, metric, fmt, registry_url) -> None:
    """List runs, newest first."""
    name, k = report.parse_metric(metric)
    reg = _open(registry_url)
    found = reg.list_runs(recipe=recipe, dataset=dataset, status=status, limit=limit or None, tag=tag)
    if fmt == "json":
        click.echo(strict_json_text(found))
        return
    if not found:
        click.echo(f"no runs{' match' if any((recipe, dataset, status, tag)) else ''} in {reg.url}")
        return
    rows = reg.metrics([r["id"] for r in found], split="test", domain=report.AVERAGE, name=name, k=k)
    headline = {
        r["id"]: report.latest_values([m for m in rows if m["run_id"] == r["id"]]).get((report.AVERAGE, name, k))
        for r in found
    }
    label = f"test {report.metric_label(name, k)}"
    # A run still `running` whose process is gone from this host (kill -9, OOM killer) would
    # otherwise look alive forever: show it as stale and say what to do with it.
    table = [
        [r["id"], report.fmt_time(r["created_at"]), "stale" if r["stale"] else r["status"], r["recipe"],
         r["dataset_name"], r["device"] or "-", r["host"] or "-", report.fmt_value(headline[r["id"]]),
         r["name"] or "", ",".join(r["tags"])]
        for r in found
    ]
    click.echo(report.render_table(
        ["id", "created (UTC)", "status", "recipe", "dataset", "device", "host", label, "name", "tags"], table,
        right=[7],
    ))
    if any(r["stale"] for r in found):
        click.echo("\nstale: recorded as running, but its process on this host is gone (killed with SIGKILL, "
                   "out of memory?); `mtrec run --resume ID` continues it")


# --------------------------------------------------------------------------- show


def _metric_sections(metrics: list[dict[str, Any]]) -> list[str]:
    """One pivot (domain × metric) per (split, stage), at its latest step."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i, m in enumerate(metrics):
        groups.setdefault((m["split"], m["stage"]), []).append({**m, "id": i})
    split_rank = {"test": 0, "valid": 1}
    out = []
    for (split, stage) in sorted(groups, key=lambda g: (split_rank.get(g[0], 2), g[0], g[1] != "final", g[1])):
        rows = groups[(split, stage)]
        steps = sorted({r["step"] for r in rows if r["step"] is not None})
        values = report.latest_values(rows, stage=stage)
        keys = sorted({(n, k) for (_, n, k) in values}, key=report.metric_sort_key)
        domains = report.sort_domains(d for (d, _, _) in values)
        title = f"{split} metrics, stage {stage}"
        if steps:
            title += f", step {steps[-1]}" + (f" (steps {steps[0]}..{steps[-1]} recorded)" if len(steps) > 1 else "")
        table = [[d] + [report.fmt_value(values.get((d, n, k))) for (n, k) in keys] for d in domains]
        out.append(title + "\n" + report.render_table(
            ["domain"] + [report.metric_label(n, k) for (n, k) in keys], table, right=range(1, len(keys) + 1)
        ))
    return out


def _status_text(run: dict[str, Any]) -> str:
    if not run["stale"]:
        return run["status"]
    return (f"running, but stale: its process (pid {run['pid']} on {run['host']}) is gone without recording how "
            f"it ended (killed with SIGKILL, out of memory?); `mtrec run --resume {run['id']}` continues it")


def _show_text(run: dict[str, Any]) -> str:
    fields = [
        ("id", run["id"]),
        ("name", run["name"] or "-"),
        ("recipe", run["recipe"]),
        ("status", _status_text(run)),
        ("dataset", f"{run['dataset_name']} (fingerprint {run['dataset_fingerprint']})"),
        ("created", f"{report.fmt_time(run['created_at'])} UTC"),
        ("started", f"{report.fmt_time(run['started_at'])} UTC"),
        ("ended", f"{report.fmt_time(run['ended_at'])} UTC" if run["ended_at"] else "-"),
        ("duration", "-" if run["duration_s"] is None else f"{run['duration_s']:.1f} s"),
        ("host", run["host"] or "-"),
        ("device", run["device"] or "-"),
        ("seed", run["seed"]),
        ("config hash", run["config_hash"]),
        ("tags", ", ".join(run["tags"]) or "-"),
    ]
    width = max(len(k) for k, _ in fields)
    parts = ["\n".join(f"{k.ljust(width)}  {v}" for k, v in fields)]
    if run["error"]:
        parts.append("error\n" + "\n".join("  " + line for line in run["error"].splitlines()))
    if run["components"]:
        parts.append("components\n" + report.render_table(
            ["kind", "name", "plugin", "distribution", "version"],
            [[c["kind"], c["name"], c["plugin"] or "-", c["distribution"] or "-", c["version"] or "-"]
             for c in run["components"]],
        ))
    parts += _metric_sections(run["metrics"]) or ["no metrics"]
    if run["artifacts"]:
        parts.append("artifacts\n" + report.render_table(
            ["kind", "size", "sha256", "path"],
            [[a["kind"], report.fmt_bytes(a["bytes"]), a["sha256"][:16], a["path"]] for a in run["artifacts"]],
            right=[1],
        ))
    return "\n\n".join(parts)


@runs.command("show")
@click.argument("run_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_registry_option
def show_cmd(run_id, fmt, registry_url) -> None:
    """Everything recorded about one run (config in --format json)."""
    run = _open(registry_url).get_run(run_id)
    click.echo(strict_json_text(run) if fmt == "json" else _show_text(run))


# ------------------------------------------------------------------------ compare


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--metric", "metrics", multiple=True, metavar="NAME[@K]",
              help="Metric to compare, e.g. ndcg@10 or mrr (repeatable) [default: all the runs have].")
@click.option("--split", default="test", show_default=True, help="Split whose metrics are compared.")
@click.option("--stage", default=None, help="Stage whose metrics are compared [default: final if recorded].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Also draw a grouped bar chart (one group per domain, one bar per run).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@_registry_option
def compare_cmd(run_ids, metrics, split, stage, plot_path, fmt, registry_url) -> None:
    """Per-domain metrics of runs side by side (rows: domains and average)."""
    reg = _open(registry_url)
    cmp = report.compare(reg, run_ids, metrics, split=split, stage=stage)
    datasets = {(r["dataset_name"], r["dataset_fingerprint"]) for r in cmp.runs}
    if len(datasets) > 1:
        click.echo("note: the runs are on different datasets (or versions of one): "
                   + ", ".join(f"{r['id']}={r['dataset_name']}" for r in cmp.runs), err=True)
    header, rows = cmp.table()
    if fmt == "json":
        click.echo(strict_json_text(cmp.to_json()))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["domain", "run_id", "metric", "value"])
        for d in cmp.domains:
            for run, m in cmp.columns():
                v = cmp.value(run["id"], d, m)
                writer.writerow([d, run["id"], report.metric_label(*m), "" if v is None else repr(v)])
        click.echo(buf.getvalue(), nl=False)
    else:
        legend = report.render_table(["run", "id", "recipe", "dataset", "status", "name"], cmp.legend())
        table = report.render_table(header, rows, right=range(1, len(header)))
        click.echo(f"{legend}\n\n{split} metrics per domain\n{table}")
    if plot_path is not None:
        report.plot_comparison(cmp, plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


# ------------------------------------------------------------------------- export


_CSV_FIELDS = ["run_id", "stage", "split", "domain", "name", "k", "value", "step"]


def _export_one(run_id: str, fmt: str, output: Path | None, registry_url: str | None) -> None:
    """One run as JSON, or its metric rows as CSV, to ``output`` or stdout."""
    run = _open(registry_url).get_run(run_id)
    if fmt == "json":
        text = strict_json_text(run) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for m in run["metrics"]:
            writer.writerow({"run_id": run["id"], **{k: ("" if v is None else v) for k, v in m.items()}})
        text = buf.getvalue()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"run {run['id']} written to {output}", err=True)


@runs.command("export")
@click.argument("run_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "tensorboard"]), required=True,
              help="json: the whole run (config, components, metrics, artifacts); csv: its metric rows; "
                   "tensorboard: event files of one or more runs (scalars per stage and epoch, hparams).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="json/csv: write here instead of to stdout.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="tensorboard: the folder to write (a subfolder per run); then `tensorboard --logdir DIR`.")
@_registry_option
def export_cmd(run_ids, fmt, output, out_dir, registry_url) -> None:
    """Export a run as JSON, or its metrics as CSV; or runs as TensorBoard event files."""
    if fmt != "tensorboard":
        if len(run_ids) != 1:
            raise click.UsageError(f"--format {fmt} exports one run; got {len(run_ids)} ids")
        if out_dir is not None:
            raise click.UsageError("--out DIR is for --format tensorboard; use -o FILE")
        _export_one(run_ids[0], fmt, output, registry_url)
        return
    if out_dir is None:
        raise click.UsageError("--format tensorboard needs --out DIR")
    if output is not None:
        raise click.UsageError("-o FILE is for json/csv; --format tensorboard writes a folder: use --out DIR")
    from .tensorboard_export import export_runs

    written = export_runs(_open(registry_url), run_ids, out_dir)
    for folder in written:
        click.echo(f"run {folder.name} written to {folder}", err=True)
    click.echo(f"view with: tensorboard --logdir {out_dir}", err=True)


# ------------------------------------------------------------------------- delete


@runs.command("delete")
@click.argument("run_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--delete-files", is_flag=True,
              help="Also delete the run's folder (<data dir>/runs/ID: checkpoints, config, metrics, artifacts).")
@_registry_option
def delete_cmd(run_id, yes, delete_files, registry_url) -> None:
    """Remove a run (and its metrics, artifacts and components) from the registry."""
    reg = _open(registry_url)
    run = reg.get_run(run_id)
    what = (f"run {run['id']} ({run['recipe']} on {run['dataset_name']}, {run['status']}, "
            f"{len(run['metrics'])} metric rows, {len(run['artifacts'])} artifacts)")
    # Checked before asking, so that the prompt names the folder; a refusal (an artifact row
    # outside the run folder) deletes nothing.
    folder = reg.run_folder(run["id"]) if delete_files else None
    if not yes:
        files = f" and its folder {folder}" if folder is not None else ""
        click.confirm(f"Delete {what}{files}?", abort=True)
    removed = reg.delete_run(run["id"], delete_files=delete_files)
    if removed is not None:
        click.echo(f"deleted {what} and its folder {removed}")
    elif folder is not None:
        click.echo(f"deleted {what} (it had no folder {folder} on this machine)")
    else:
        click.echo(f"deleted {what}")


# --------------------------------------------------------------------------- tag


@runs.command("tag")
@click.argument("run_id", metavar="ID")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
@_registry_option
def tag_cmd(run_id, tags, remove, registry_url) -> None:
    """Add (or --remove) tags of a run; `mtrec runs list --tag T` filters by them."""
    reg = _open(registry_url)
    rid = reg.resolve(run_id)
    now = reg.set_tags(rid, remove=tags) if remove else reg.set_tags(rid, add=tags)
    click.echo(f"{rid}: {', '.join(now) or '(no tags)'}")


# -------------------------------------------------------------------------- where


@runs.command("where")
@click.option("--verbose", "-v", is_flag=True, help="Also open it: file, schema revision and number of runs.")
@_registry_option
def where_cmd(verbose, registry_url) -> None:
    """Print the registry URL (password masked); does not create the database."""
    click.echo(mask_url(normalize_url(resolve_url(_url(registry_url)))))
    if verbose:
        reg = _open(registry_url)
        if reg.sqlite_path is not None:
            click.echo(f"file      {reg.sqlite_path}")
        click.echo(f"revision  {reg.revision}")
        click.echo(f"runs      {reg.count_runs()}")


def main() -> None:  # pragma: no cover - `python -m mtrec.registry.cli`
    runs(prog_name="mtrec runs")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
