"""One ``mtrec run``, start to finish.

    config resolved ─► dataset loaded (cached) ─► run checked (domains, run folder writable,
    identifier and stage sources) ─► registry run opened and tracked ─► identifier fitted (or reused
    from an earlier run) ─► transfer strategy trains its stages (validation only; shared ones may be
    taken from an earlier run, ``transfer.from_run``) ─► test split scored once
    ─► models, identifier and metrics recorded ─► report

A run refused by a check leaves nothing behind (no registry row, no run folder); once the
registry row exists, any failure records it ``failed``, and Ctrl-C or SIGTERM ``interrupted``
(the engine turns SIGTERM into :class:`RunInterrupted`, a KeyboardInterrupt, registry or not, so
``mtrec_on_run_end`` hooks always hear how a run ended).

Under ``torchrun`` every rank runs this whole function (see :mod:`mtrec.training.distributed`):
rank 0 alone opens the registry run, writes the run folder and calls lifecycle hooks; the run id
and the fitted identifier are broadcast from it.

``execute_run(..., resume=ID)`` continues an interrupted run in its own folder: the identifier
and every finished stage are loaded rather than recomputed, the interrupted stage continues
after its last finished epoch, and the registry status goes back from interrupted to running.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from mtrec.config import ResolvedConfig, validate
from mtrec.data.load import load_dataset, resolve_spec
from mtrec.data.model import MultiDomainDataset
from mtrec.errors import ConfigError, RunInterrupted, UserError
from mtrec.evaluation.evaluator import EvalReport
from mtrec.files import strict_json_text
from mtrec.paths import data_dir
from mtrec.plugins import Plugins
from mtrec.run_context import RunContext
from mtrec.training import distributed as D
from mtrec.training.checkpoint import (
    IDENTIFIER_STEP,
    atomic_torch_save,
    atomic_write_text,
    load_checkpoint,
    read_json,
    rng_state,
    set_rng_state,
    step_paths,
)
from mtrec.training.device import pick_device, seed_everything
from mtrec.training.reuse import check_stage_source, stage_source


@dataclass
class RunOutcome:
    run_id: str | None
    run_dir: Path
    test: EvalReport
    stages: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def load_run_dataset(resolved: ResolvedConfig, plugins: Plugins, progress: bool = True) -> MultiDomainDataset:
    spec = resolve_spec(resolved.config.dataset, plugins.formats)
    return load_dataset(spec, plugins.formats, progress=progress)


def component_rows(resolved: ResolvedConfig) -> list[dict]:
    return [
        {"kind": kind, "name": c.name, "plugin": c.plugin, "distribution": c.distribution, "version": c.version}
        for kind, c in resolved.components.items()
    ]


def new_run_id() -> str:
    import uuid

    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def runs_root(output_root: Path | None = None) -> Path:
    return output_root or data_dir() / "runs"


def resume_config(run_id: str, plugins: Plugins, output_root: Path | None = None) -> ResolvedConfig:
    """The resolved config of an earlier run, from its folder (``config.json``)."""
    path = runs_root(output_root) / run_id / "config.json"
    if not path.is_file():
        raise UserError(
            f"cannot resume run {run_id!r}: {path} does not exist (runs resume from their folder under "
            f"{runs_root(output_root)}; set MTREC_HOME as it was when the run started)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot resume run {run_id!r}: {path} is unreadable ({exc})") from None
    return validate(plugins.catalogue, raw)


def execute_run(
    resolved: ResolvedConfig,
    plugins: Plugins,
    *,
    registry: Any = None,
    progress: bool = True,
    output_root: Path | None = None,
    resume: str | None = None,
) -> RunOutcome:
    created_group = D.init_from_env(resolved.config.device)
    try:
        return _execute(resolved, plugins, registry=registry if D.is_main() else None,
                        progress=progress and D.is_main(), output_root=output_root, resume=resume)
    finally:
        if created_group:
            D.shutdown()


def _execute(resolved: ResolvedConfig, plugins: Plugins, *, registry: Any, progress: bool,
             output_root: Path | None, resume: str | None) -> RunOutcome:
    started = time.perf_counter()
    config = resolved.config
    device = pick_device(config.device)
    dataset = load_run_dataset(resolved, plugins, progress)
    run_id = resume or D.broadcast_object(new_run_id())
    run_dir = runs_root(output_root) / run_id

    try:
        with ExitStack() as stack:
            # SIGTERM ends a run like Ctrl-C (hooks and the registry hear "interrupted"), with or
            # without a registry.
            stack.enter_context(sigterm_interrupts())
            # Everything the run needs is checked before the registry hears of it: a refused run
            # leaves no registry row and no run folder.
            if resume:
                if D.is_main():
                    stack.enter_context(run_lock(run_dir, run_id))
                    check_resumable(run_dir, dataset)
                    if not step_paths(run_dir, IDENTIFIER_STEP)[0].is_file():
                        check_identifier_source(registry, config, dataset)
            elif D.is_main():
                check_identifier_source(registry, config, dataset)
                check_stage_source(resolved, plugins.catalogue, dataset, runs_root(output_root))
                writable_folder(runs_root(output_root), shown=run_dir)
            run = RunContext(resolved, dataset, plugins, device, run_dir, registry=registry, run_id=run_id,
                             progress=progress)  # refuses unknown domains
            if registry is not None:
                if resume:
                    registry.resume_run(run_id)
                else:
                    registry.start_run(
                        run_id=run_id, name=config.name, recipe=config.recipe, config=config.model_dump(mode="json"),
                        config_hash=config.config_hash(), seed=config.seed, device=str(device),
                        dataset_name=dataset.name, dataset_spec=dataset.spec,
                        dataset_fingerprint=dataset.fingerprint, components=component_rows(resolved),
                        host=socket.gethostname(),
                    )
            # Hooks hear how the run ended after the registry has recorded it; a hook that raises
            # after a finished run cannot turn it into a failed one.
            stack.enter_context(_report_end(plugins, run))
            if registry is not None:
                _track(stack, registry, run_id)
            # From here on every failure is recorded as failed (interrupted for Ctrl-C / SIGTERM).
            if not resume and D.is_main():
                writable_folder(run_dir)
                stack.enter_context(run_lock(run_dir, run_id))
                atomic_write_text(run_dir / "config.json", json.dumps(config.model_dump(mode="json"), indent=2))
                atomic_write_text(run_dir / "run.json", json.dumps(
                    {"run_id": run_id, "dataset_fingerprint": dataset.fingerprint, "items": items_digest(dataset),
                     "world_size": D.world().size}))
            if config.training.threads:
                torch.set_num_threads(config.training.threads)
            seed_everything(config.seed, device)
            run.notify("mtrec_on_run_start", run=run)
            run.identifier = prepare_identifier(run)
            strategy = run.build("transfer")
            models = strategy.execute(run)
            for model in models.values():
                model.eval()
            test = run.evaluate(models, "test")
            run.log_metrics(test.rows(stage="final"))
            outcome = RunOutcome(
                run_id=run_id,
                run_dir=run_dir,
                test=test,
                stages=[s.__dict__ for s in run.stage_results],
                seconds=time.perf_counter() - started,
            )
            if D.is_main():
                save_models(run, strategy, models)
                atomic_write_text(run_dir / "metrics.json", strict_json_text(outcome_json(outcome)))
            if registry is not None:
                registry.set_status(run_id, "finished")
            run.end_metrics = test.flat()
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say which run to resume
        exc.run_id = run_id  # type: ignore[attr-defined]
        exc.run_dir = run_dir  # type: ignore[attr-defined]
        raise
    return outcome


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`RunInterrupted` while a run goes on (main thread only).

    Only the first SIGTERM interrupts; later ones, while the run is being recorded and its hooks
    told, are ignored (a second ``kill`` must not cut the ending short).  The previous handler is
    restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def on_sigterm(signum: int, _frame: Any) -> None:
        if fired:
            return
        fired.append(signum)
        raise RunInterrupted(signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _track(stack: ExitStack, registry: Any, run_id: str) -> None:
    """Enter ``registry.track(run_id)`` on ``stack``; should that fail, the row just opened is
    still marked failed rather than left running."""
    try:
        stack.enter_context(registry.track(run_id))
    except BaseException as exc:
        try:
            registry.set_status(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        except Exception:
            pass
        raise


# --------------------------------------------------------------------------- run folder


def writable_folder(folder: Path, shown: Path | None = None) -> None:
    """Create ``folder`` or say plainly why it cannot be (before any training time is spent).

    ``shown`` is the folder the message names (a run folder whose parent is the one probed).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise UserError(
            f"cannot write the run folder {shown or folder}: {exc.strerror or exc}; set MTREC_HOME to a writable folder"
        ) from None


@contextmanager
def run_lock(run_dir: Path, run_id: str) -> Iterator[None]:
    """Hold an exclusive lock on the run folder while the run goes on.

    The operating system drops the lock when the process dies, however it dies (even SIGKILL), so
    ``--resume`` can tell a run still in progress from one that was killed.
    """
    import fcntl

    writable_folder(run_dir)
    path = run_dir / "run.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"run {run_id} is in progress ({owner}); it cannot be resumed while it runs") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def items_digest(dataset: MultiDomainDataset) -> str:
    """What a saved model's item indices mean: every item's domain, raw id and text, in index order.

    The dataset fingerprint also covers the interactions and the spec (its paths too); two datasets
    with the same items digest give every item index the same item.
    """
    import hashlib

    text = json.dumps([dataset.domains, dataset.item_domain.tolist(), dataset.item_raw_id, dataset.item_text])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_resumable(run_dir: Path, dataset: MultiDomainDataset) -> None:
    """Refuse a resume that cannot work, before the registry hears of it: a finished run, a changed
    dataset, a run whose fitted identifier is gone."""
    info_path = run_dir / "run.json"
    if (run_dir / "metrics.json").is_file():
        raise UserError(f"run {run_dir.name} already finished ({run_dir / 'metrics.json'}); there is nothing to resume")
    if info_path.is_file():
        info = read_json(info_path, "the run's dataset fingerprint")
        recorded = info.get("dataset_fingerprint") if isinstance(info, dict) else None
        if recorded != dataset.fingerprint:
            raise UserError(
                f"cannot resume run {run_dir.name}: its dataset changed since the run started "
                f"(fingerprint {recorded} then, {dataset.fingerprint} now)"
            )
    done_path, _ = step_paths(run_dir, IDENTIFIER_STEP)
    identifier_dir = run_dir / "identifier"
    if done_path.is_file() and not identifier_dir.is_dir():
        raise UserError(
            f"cannot resume run {run_dir.name}: {done_path} says its identifier was fitted, but {identifier_dir} "
            "is missing (was the run folder copied in part?); copy it back, or start a new run"
        )


def load_identifier(identifier: Any, directory: Path, what: str) -> None:
    """``identifier.load(directory)``, a missing or malformed file named in one message."""
    try:
        identifier.load(directory)
    except (FileNotFoundError, NotADirectoryError) as exc:
        missing = exc.filename or directory
        raise UserError(f"cannot load {what} from {directory}: {missing} does not exist") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"cannot load {what} from {directory}: a JSON file is malformed "
                        f"(line {exc.lineno}: {exc.msg})") from None


# --------------------------------------------------------------------------- steps


@contextmanager
def _report_end(plugins: Plugins, run: RunContext) -> Iterator[None]:
    """Tell ``mtrec_on_run_end`` hooks how the run ended, whatever ended it."""
    try:
        yield
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into RunInterrupted by sigterm_interrupts
        run.notify("mtrec_on_run_end", run=run, status="interrupted", metrics={})
        raise
    except Exception:
        run.notify("mtrec_on_run_end", run=run, status="failed", metrics={})
        raise
    run.notify("mtrec_on_run_end", run=run, status="finished", metrics=run.end_metrics)


def prepare_identifier(run: RunContext) -> Any:
    """Fit the identifier, or load the one an earlier run saved (``identifier.from_run``, or the run
    whose stages this run takes: ``transfer.from_run``).

    Under torchrun every rank fits (same seed, same RNG draws afterwards) and then loads rank 0's
    saved identifier, so all ranks agree even where fitting is not bit-for-bit reproducible.  A
    resumed run loads the identifier it saved before the interruption.
    """
    identifier = run.build("identifier")
    directory = run.run_dir / "identifier"
    done_path, _ = step_paths(run.run_dir, IDENTIFIER_STEP)
    done = D.broadcast_object(load_checkpoint(done_path) if D.is_main() and done_path.is_file() else None)
    if done is not None:
        load_identifier(identifier, shared_directory(directory), "the identifier this run fitted")
        states = done["rng"]
        set_rng_state(states[D.world().rank if len(states) == D.world().size else 0])
        return identifier
    source = run.config.identifier.from_run
    stages_from = stage_source(run)
    if stages_from is not None:  # the identifier the taken stages were trained with
        load_identifier(identifier, shared_directory(stages_from / "identifier" if D.is_main() else None),
                        f"the identifier of run {stages_from.name} (transfer.from_run)")
    elif source:
        path = run.registry.artifact_path(source, "identifier") if D.is_main() else None
        load_identifier(identifier, shared_directory(path), f"the identifier of run {source}")
    else:
        identifier.fit(run)
    if D.is_main():
        identifier.save(directory)
    if D.is_distributed():
        shared = shared_directory(directory)
        if not D.is_main():
            identifier.load(shared)
    # Fitted identifiers may report quality (codebook usage, collisions) as registry metric rows.
    if hasattr(identifier, "metric_rows"):
        run.log_metrics(identifier.metric_rows())
    run.log_artifact("identifier", directory)
    states = D.all_gather_objects(rng_state())
    if D.is_main():
        atomic_torch_save({"name": "identifier", "rng": states}, done_path)
    return identifier


def check_identifier_source(registry: Any, config: Any, dataset: MultiDomainDataset) -> None:
    """Refuse an ``identifier.from_run`` whose run fitted another identifier or another dataset's
    items (its tokens would be attached to the wrong item ids) -- before the run is recorded."""
    source = config.identifier.from_run
    if not source:
        return
    if registry is None:
        raise ConfigError("identifier.from_run needs the registry (do not pass --no-registry)")
    earlier = registry.get_run(source)
    fitted = (earlier.get("config") or {}).get("identifier", {}).get("name")
    wanted = config.identifier.name
    if fitted != wanted:
        raise ConfigError(f"identifier.from_run: run {earlier['id']} fitted identifier {fitted!r}, "
                          f"this run's identifier is {wanted!r}")
    if earlier.get("dataset_fingerprint") != dataset.fingerprint:
        raise ConfigError(f"identifier.from_run: run {earlier['id']} fitted its identifier on dataset "
                          f"{earlier.get('dataset_name')!r} (fingerprint {earlier.get('dataset_fingerprint')}), "
                          f"this run's dataset {dataset.name!r} has fingerprint {dataset.fingerprint}")
    registry.artifact_path(earlier["id"], "identifier")  # recorded, present and unchanged


def shared_directory(path: Path | None) -> Path:
    """Rank 0's folder ``path``; other ranks get a private copy of its files (nodes share no disk)."""
    if not D.is_distributed():
        assert path is not None
        return path
    files = None
    if D.is_main():
        assert path is not None
        files = {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    files = D.broadcast_object(files)
    if D.is_main():
        return path  # type: ignore[return-value]
    copy = Path(tempfile.mkdtemp(prefix=f"mtrec-rank{D.world().rank}-"))
    atexit.register(shutil.rmtree, copy, True)
    for rel, data in files.items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes(data)
    return copy


def save_models(run: RunContext, strategy: Any, models: dict[int, torch.nn.Module]) -> None:
    directory = run.run_dir / "models"
    directory.mkdir(parents=True, exist_ok=True)
    strategy.save(models, directory)
    run.log_artifact("models", directory)


def outcome_json(outcome: RunOutcome) -> dict:
    return {
        "run_id": outcome.run_id,
        "test": outcome.test.metrics,
        "counts": outcome.test.counts,
        "stages": outcome.stages,
        "seconds": outcome.seconds,
    }
