"""Stages taken from an earlier run: ``transfer.from_run``.

A strategy that trains one shared stage and then per-domain stages from it (``unified-then-lora``:
``unified``, then ``lora:D`` or ``finetune:D``) declares the params that only its per-domain stages
read (``per_domain_params``, a class attribute) and marks the shared stages ``Stage(reusable=True)``.
A run with ``transfer.from_run: RUN_ID`` takes that run's identifier and reusable stages from its
folder instead of fitting and training them again, and trains only its own per-domain stages: LoRA
against full fine-tuning from one unified model costs the per-domain stages alone.

The earlier run is found by its folder beside this run's, ``<runs root>/RUN_ID`` (the stages' resume
files are kept there, not in the registry), by its id or a unique prefix as ``mtrec run --resume``
finds it.  It need not have finished: its identifier and the stages taken must have, so a second run
can start as soon as the first one's unified stage is done.

Before the run is recorded (:func:`check_stage_source`): the strategy declares per-domain params, the
folder exists and holds a fitted identifier, the dataset fingerprint is the same, and the two configs
are equal but for the names (run, recipe, dataset spec) and the per-domain params -- anything else
would make the taken stages a different computation than this run's config says.  The files are read with
``weights_only`` like every resume file, and the id names a folder beside this run's, never a path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtrec.config import flat_config, validate
from mtrec.errors import ConfigError, UserError
from mtrec.files import atomic_torch_save
from mtrec.paths import run_folder_id
from mtrec.training.checkpoint import IDENTIFIER_STEP, load_checkpoint, step_paths

if TYPE_CHECKING:
    from mtrec.components import Catalogue, Run
    from mtrec.config import ResolvedConfig
    from mtrec.data.model import MultiDomainDataset

KEY = "transfer.from_run"
# keys that say what a run is called or how its dataset was named (the fingerprint compares the data),
# not what it computes
_NAMES = ("name", "recipe", "dataset", KEY)


def per_domain_params(resolved: "ResolvedConfig") -> frozenset[str]:
    """The transfer strategy's params that only its per-domain stages read (none: it shares no stage)."""
    return frozenset(getattr(resolved.components["transfer"].factory, "per_domain_params", frozenset()))


def source_folder(runs_root: Path, run_id: str) -> Path:
    """The folder of run ``run_id`` (or the one run whose id starts with it) under ``runs_root``."""
    try:
        folder = runs_root / run_folder_id(runs_root, run_id)
    except ValueError as exc:
        raise ConfigError(f"{KEY}: {exc}") from None
    if folder.is_symlink() or not (folder / "config.json").is_file():
        raise ConfigError(f"{KEY}: {folder} is not a run folder (it has no config.json)")
    return folder


def comparable(config: dict[str, Any], exempt: frozenset[str]) -> dict[str, Any]:
    """Dotted key -> value of a run config, without the keys two runs sharing stages may differ in."""
    skip = set(_NAMES) | {f"transfer.params.{name}" for name in exempt}
    return {key: value for key, value in flat_config(config).items()
            if key not in skip and not any(key.startswith(f"{name}.") for name in skip)}


def check_stage_source(resolved: "ResolvedConfig", catalogue: "Catalogue", dataset: "MultiDomainDataset",
                       runs_root: Path) -> None:
    """Refuse a ``transfer.from_run`` whose stages would not be this run's, before the run is recorded;
    a unique prefix is replaced by the full id in the config, which the registry then records."""
    config = resolved.config
    if not config.transfer.from_run:
        return
    exempt = per_domain_params(resolved)
    if not exempt:
        raise ConfigError(f"{KEY}: transfer {config.transfer.name!r} has no stage another run can share "
                          "(only a strategy that declares per_domain_params shares one, e.g. unified-then-lora)")
    folder = source_folder(runs_root, config.transfer.from_run)
    run_id = config.transfer.from_run = folder.name
    try:
        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        earlier = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{KEY}: cannot read run {run_id}'s run.json and config.json ({exc})") from None
    if not isinstance(info, dict) or info.get("dataset_fingerprint") != dataset.fingerprint:
        recorded = info.get("dataset_fingerprint") if isinstance(info, dict) else None
        raise ConfigError(f"{KEY}: run {run_id} trained on another dataset (fingerprint {recorded}; "
                          f"this run's {dataset.name!r}: {dataset.fingerprint})")
    try:  # defaults added since that run filled in, as `mtrec run --resume` reads it
        earlier_config = validate(catalogue, earlier).config
    except ConfigError as exc:
        raise ConfigError(f"{KEY}: run {run_id}'s config no longer validates: {exc}") from None
    mine, theirs = comparable(config.model_dump(mode="json"), exempt), \
        comparable(earlier_config.model_dump(mode="json"), exempt)
    differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k, "(unset)") != theirs.get(k, "(unset)"))
    if differ:
        shown = "; ".join(f"{k}: {theirs.get(k, '(unset)')!r} there, {mine.get(k, '(unset)')!r} here"
                          for k in differ[:4])
        more = f" (and {len(differ) - 4} more)" if len(differ) > 4 else ""
        raise ConfigError(
            f"{KEY}: run {run_id} trained its stages with another config: {shown}{more}. Only the run's name, "
            f"the recipe's name, the dataset spec's path and transfer.params.{{{', '.join(sorted(exempt))}}} may differ"
        )
    identifier_done = step_paths(folder, IDENTIFIER_STEP)[0]
    if not identifier_done.is_file() or not (folder / "identifier").is_dir():
        raise ConfigError(f"{KEY}: run {run_id} has not fitted its identifier yet; start this run when it has")
    for path in (folder / "identifier", identifier_done.parent):
        _refuse_links(folder, path)


def _refuse_links(folder: Path, path: Path) -> None:
    """What is read of another run lies in its folder: no symlink on the way or inside."""
    linked = [p for p in [path, *path.rglob("*")] if p.is_symlink()]
    if linked or not path.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(f"{KEY}: refusing to read {linked[0] if linked else path}: it leads out of run "
                          f"{folder.name}'s folder (a symlink), and the files taken from another run must lie in it")


def stage_source(run: "Run") -> Path | None:
    """The folder of the run this run takes its shared stages from, if any (checked before the run started)."""
    run_id = run.config.transfer.from_run
    return run.run_dir.parent / run_id if run_id else None


def take_stage(run: "Run", key: str, name: str, done_path: Path) -> dict | None:
    """The finished stage ``key`` of the ``transfer.from_run`` run, written as this run's own
    (``done_path``) so that a resume finds it there; None without ``transfer.from_run``."""
    folder = stage_source(run)
    if folder is None:
        return None
    theirs = step_paths(folder, key)[0]
    if not theirs.is_file():
        raise UserError(f"{KEY}: run {folder.name} has not finished stage {name!r} ({theirs} does not exist); "
                        "start this run once it has, or without transfer.from_run")
    done = load_checkpoint(theirs)
    if not isinstance(done, dict) or done.get("name") != name:
        found = done.get("name") if isinstance(done, dict) else None
        raise UserError(f"{KEY}: {theirs} holds stage {found!r}, this run's stage at that position is {name!r}")
    done["result"] = {**done["result"], "from_run": folder.name}
    atomic_torch_save(done, done_path)
    return done
