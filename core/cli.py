"""The ``mtrec`` command line.

Bad input (a missing file, a malformed line, an unknown plugin or key) prints one message and
exits with code 2; ``mtrec --debug ...`` (or ``MTREC_DEBUG=1``) shows the full traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mtrec import __version__
from mtrec.errors import UserError


class MtrecGroup(click.Group):
    """Turns UserError into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=MtrecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mtrec")
@click.option("--debug", is_flag=True, envvar="MTREC_DEBUG", help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """mtrec: multi-target cross-domain sequential recommendation.

    \b
    Train and evaluate a method on the bundled dataset:
        mtrec run --plugin sasrec --quick
    Compare runs recorded in the registry:
        mtrec runs list
        mtrec runs compare ID1 ID2 --plot cmp.png
    See what is installed:
        mtrec plugins list
        mtrec components list
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _plugins():
    from mtrec.plugins import get_plugins

    return get_plugins()


@contextmanager
def _epoch_log(enabled: bool) -> Iterator[None]:
    """Without progress bars, a line per epoch on stderr, so a log file still shows how training goes."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("mtrec.training")
    handler = logging.StreamHandler(sys.stderr)  # this call's stderr (tests swap it between calls)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _open_registry(url: str | None):
    from mtrec.registry import open_registry

    return open_registry(url)


# --------------------------------------------------------------------------- run


@main.command()
@click.option("--plugin", "recipe", metavar="NAME",
              help="Recipe to run (e.g. sasrec, gmc); `mtrec components list` shows them.")
@click.option("--resume", "resume_id", metavar="RUN_ID",
              help="Continue an interrupted run (id or unique prefix) from its last checkpoint, with its own config.")
@click.option("--dataset", metavar="SPEC_OR_PATH",
              help="Dataset spec file, dataset folder, or bundled dataset name [default: amazon-mini].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML or TOML file of config keys over the recipe's defaults; `recipe:` in it replaces --plugin, "
                   "its `quick:` section applies with --quick.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one key, e.g. --set encoder.params.layers=4 (repeatable; applied last).")
@click.option("--quick", is_flag=True, help="Tiny profile: finishes in about a minute on a 2-core CPU.")
@click.option("--name", help="A name for this run in the registry.")
@click.option("--registry", "registry_url", envvar="MTREC_REGISTRY_URL", metavar="URL",
              help="SQLAlchemy URL of the experiment registry [default: a SQLite file, see `mtrec runs where`].")
@click.option("--no-registry", is_flag=True, help="Do not record this run in the registry.")
@click.option("--metrics-json", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the test metrics and stage timings to FILE.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars [default: when stderr is a terminal]; without them, one log line per epoch on stderr.")
def run(recipe, resume_id, dataset, config_file, overrides, quick, name, registry_url, no_registry, metrics_json, progress):
    """Train and evaluate a recipe; print the per-domain test metrics.

    \b
    Config layers, each over the previous: recipe defaults, --quick profile,
    --config FILE (and its own `quick:` section under --quick), --set KEY=VALUE.
    A config file that names its recipe (`recipe: gmc`) needs no --plugin.  Examples:
        mtrec run --plugin sasrec --quick
        mtrec run --plugin sasrec --dataset my_spec.yaml --set training.epochs=50
        mtrec run --plugin sasrec --set transfer.name=joint --set encoder.params.view=cross
        mtrec run --config examples/mixes/ntg-on-gmc-unified.yaml --quick   (a mix of methods)
        mtrec run --resume 20261123-101500-ab12cd      (after a crash or kill)
        torchrun --nproc_per_node=2 -m mtrec run --plugin sasrec   (DDP, see docs/operations.md)
    """
    from mtrec.config import resolve
    from mtrec.engine import execute_run, resume_config

    plugins = _plugins()
    if resume_id is not None:
        given = [opt for opt, value in (("--plugin", recipe), ("--dataset", dataset), ("--config", config_file),
                                        ("--set", overrides), ("--quick", quick), ("--name", name)) if value]
        if given:
            raise click.UsageError(f"--resume continues a run with the config it started with; drop {', '.join(given)}")
        resume_id = _resolve_run_folder(resume_id)
        resolved = resume_config(resume_id, plugins)
    elif recipe is None and config_file is None:
        raise click.UsageError("give --plugin NAME (a recipe; `mtrec components list` shows them), "
                               "--config FILE (naming its recipe) or --resume RUN_ID")
    else:
        extra = {}
        if dataset is not None:
            extra["dataset"] = dataset
        if name is not None:
            extra["name"] = name
        resolved = resolve(plugins.catalogue, recipe, config_file=config_file, overrides=overrides, quick=quick, extra=extra)
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 touches the registry
    registry = None if no_registry or not main_rank else _open_registry(registry_url)
    show_progress = sys.stderr.isatty() if progress is None else progress
    try:
        with _epoch_log(enabled=not show_progress):
            outcome = execute_run(resolved, plugins, registry=registry, progress=show_progress, resume=resume_id)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (the engine turns it into an interruption)
        import signal

        signum = getattr(exc, "signum", signal.SIGINT)
        rid, folder = getattr(exc, "run_id", None), getattr(exc, "run_dir", None)
        how = str(exc) or "interrupted (Ctrl-C)"
        if rid is not None and folder is not None and Path(folder).is_dir():
            how += f"; run {rid} can continue: mtrec run --resume {rid}"
        click.secho(f"{how}", fg="yellow", err=True)
        raise SystemExit(128 + int(signum)) from None
    if not main_rank:
        return
    click.echo(format_report(outcome.test))
    click.echo(f"\nrun {outcome.run_id} finished in {outcome.seconds:.1f}s; outputs in {outcome.run_dir}")
    if metrics_json:
        from mtrec.engine import outcome_json
        from mtrec.files import atomic_write_text, strict_json_text

        atomic_write_text(Path(metrics_json), strict_json_text(outcome_json(outcome)))


def _resolve_run_folder(run_id: str) -> str:
    """The full id of the run folder named ``run_id`` or, uniquely, starting with it."""
    from mtrec.engine import runs_root
    from mtrec.errors import UserError
    from mtrec.paths import run_folder_id

    try:
        return run_folder_id(runs_root(), run_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def format_report(report) -> str:
    metrics = [m for m in next(iter(report.metrics.values())).keys()]
    header = ["domain", "users"] + metrics
    rows = [[d, str(report.counts[d])] + [f"{report.metrics[d][m]:.4f}" for m in metrics] for d in report.metrics]
    return format_table(header, rows, title=f"{report.split} metrics (full ranking unless configured otherwise)")


def format_table(header: list[str], rows: list[list[str]], title: str = "") -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [title] if title else []
    out += [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- plugins and components


@main.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def plugins_list(fmt: str) -> None:
    """List loaded plugins (and those that failed to load or to register, with their error)."""
    loaded = _plugins()
    loaded.check_registrations()  # a plugin whose registration hook fails is listed FAILED, not ok
    infos = list(loaded.infos.values())
    if fmt == "json":
        click.echo(json.dumps([i.__dict__ | {"traceback": None} for i in infos], indent=2, default=str))
        return
    rows = [[i.name, i.distribution, i.version, "FAILED: " + i.error if i.error else "ok"] for i in infos]
    click.echo(format_table(["plugin", "distribution", "version", "status"], rows))
    if os.environ.get("MTREC_LOAD_PLUGINS") is not None:
        click.echo(f"\n(MTREC_LOAD_PLUGINS={os.environ['MTREC_LOAD_PLUGINS']} restricts which plugins load)")


@plugins.command("new")
@click.argument("name")
@click.option("--path", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              metavar="DIR", help="Folder in which the plugin's folder NAME is created.")
def plugins_new(name: str, parent: str) -> None:
    """Create a plugin distribution in DIR/NAME: an encoder, a recipe, a test, a README.

    \b
    NAME is lowercase words joined by hyphens; it names the entry point, the encoder and the
    recipe; the distribution is mtrec-NAME, the package mtrec_NAME (hyphens as underscores).  Then:
        pip install -e NAME          (add --no-build-isolation when offline)
        mtrec plugins list
        mtrec run --plugin NAME --quick
    Writing a plugin step by step: docs/plugins.md.
    """
    from mtrec.scaffold import create_plugin, plugin_names

    plugin_names(name)  # a bad NAME is refused before the (slower) plugin loading below
    catalogue = _plugins().catalogue
    taken = set(catalogue.components["encoder"]) | set(catalogue.recipes)
    folder = create_plugin(name, Path(parent), taken=taken, mtrec_version=__version__)
    names = plugin_names(name)
    click.echo(f"created {folder}/ (distribution {names.distribution}, package {names.package}, "
               f"encoder and recipe {names.name!r})")
    click.echo(f"next:  pip install -e {folder}  &&  mtrec run --plugin {names.name} --quick")


@main.group()
def components() -> None:
    """Registered components and recipes."""


@components.command("list")
@click.option("--kind", type=click.Choice(["identifier", "encoder", "transfer", "decoder", "recipe"]))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def components_list(kind: str | None, fmt: str) -> None:
    """List components by kind, with the plugin that registered each, and recipes."""
    catalogue = _plugins().catalogue
    rows = []
    for k, by_name in catalogue.components.items():
        if kind in (None, k):
            rows += [[k, c.name, c.plugin, c.description] for c in by_name.values()]
    if kind in (None, "recipe"):
        rows += [["recipe", r.name, r.plugin, r.description] for r in catalogue.recipes.values()]
    if fmt == "json":
        click.echo(json.dumps([dict(zip(["kind", "name", "plugin", "description"], r)) for r in rows], indent=2))
    else:
        click.echo(format_table(["kind", "name", "plugin", "description"], rows))


# --------------------------------------------------------------------------- data


@main.group()
def data() -> None:
    """Datasets: inspect what a spec or folder assembles to."""


@data.command("stats")
@click.argument("dataset", metavar="SPEC_OR_PATH", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def data_stats(dataset: str | None, fmt: str) -> None:
    """Per-domain statistics of a dataset (the bundled one by default)."""
    from mtrec.data.load import load_dataset, resolve_spec

    plugins = _plugins()
    ds = load_dataset(resolve_spec(dataset, plugins.formats), plugins.formats)
    stats = ds.stats()
    if fmt == "json":
        click.echo(json.dumps({"name": ds.name, "fingerprint": ds.fingerprint, "domains": stats}, indent=2))
        return
    header = list(stats[0])
    click.echo(format_table(header, [[str(r[h]) for h in header] for r in stats],
                            title=f"{ds.name} (fingerprint {ds.fingerprint}): {ds.n_users} users, "
                                  f"{ds.n_items} items, {ds.n_interactions} interactions"))


# --------------------------------------------------------------------------- recommend


@main.command()
@click.option("--run", "run_id", required=True, help="A finished run's id (a unique prefix is enough).")
@click.option("--domain", required=True, help="Domain to recommend from.")
@click.option("--history", required=True, help="Comma-separated raw item ids, oldest first.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--registry", "registry_url", envvar="MTREC_REGISTRY_URL", metavar="URL")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def recommend(run_id: str, domain: str, history: str, k: int, registry_url: str | None, fmt: str) -> None:
    """Top-k items of DOMAIN for a history, from a finished run's saved model.

    \b
    Example:
        mtrec recommend --run 20261123-101500-ab12cd --domain Office --history 18712,19001 -k 5
    """
    from mtrec.inference import load_run, recommend as do_recommend, recommendations_json

    items = [x.strip() for x in history.split(",") if x.strip()]
    if not items:
        raise click.BadParameter("give at least one item id", param_hint="--history")
    run_ctx, models = load_run(_open_registry(registry_url), run_id, _plugins())
    recs = do_recommend(run_ctx, models, domain, items, k)
    if fmt == "json":
        click.echo(recommendations_json(recs))
    else:
        rows = [[str(i + 1), r.item, "" if r.score is None else f"{r.score:.4f}", r.title[:80]] for i, r in enumerate(recs)]
        click.echo(format_table(["rank", "item", "score", "title"], rows, title=f"top {k} in {domain}"))


# The registry's command groups, attached last: they are part of the package (`mtrec.registry`);
# `mtrec ui` imports its web libraries only when it runs.
from mtrec.registry.cli import runs  # noqa: E402
from mtrec.registry.ui.command import ui  # noqa: E402

main.add_command(runs)
main.add_command(ui)
