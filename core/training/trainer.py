"""The training loop every stage of every recipe runs through.

Training tensors live on the device for the whole stage and are sliced by a seeded
:class:`~torch.utils.data.DistributedSampler` order each epoch (seed = run seed + stage index,
reshuffled by epoch): no DataLoader workers, no per-batch host-to-device copies, the same batches
in the same order on every CPU run.  For an encoder that reports its examples' lengths
(``example_lengths``) the batches are length-bucketed (:mod:`mtrec.training.batching`,
``training.length_buckets``).  The learning rate follows ``training.lr_schedule`` and
``warmup_steps`` (transformers' schedulers, stepped after every optimizer step, over the stage's
planned epochs; the warm-up ends with the first epoch at the latest).  Under ``torchrun`` each
rank takes its share of every epoch's order and trains a
:class:`~torch.nn.parallel.DistributedDataParallel` replica (see :mod:`mtrec.training.distributed`);
the union of the ranks' batches at each step is the batch a single process would take.  The best
epoch by validation ``select_metric`` (NDCG@10 by default) is kept and restored at the end; the
test split is never touched here.  A stage with ``score_start`` (fine-tuning) first validates the
model it starts from as epoch 0, the best to beat: when no epoch beats it, the stage ends with its
starting weights.

Resume: after every epoch (and after the epoch-0 validation of a ``score_start`` stage) rank 0
writes ``<run>/checkpoints/resume/<NNN-stage>.last.pt`` (model, optimizer, lr scheduler, combiner,
every rank's RNG states, and the stage's progress: :class:`StageState`, versioned -- epoch, best
state, early-stopping counters, history) and at the end of
the stage ``<NNN-stage>.done.pt`` (final weights, result, RNG).  A resumed run (``mtrec run
--resume``) replays the strategy: finished stages load their result instead of training, the
interrupted one continues after its last epoch, and the RNG states make the continuation the same
computation as an uninterrupted run.  A ``reusable`` stage of a run with ``transfer.from_run`` is
taken the same way from that run's ``.done.pt`` (:mod:`mtrec.training.reuse`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from mtrec.evaluation.evaluator import AVERAGE
from mtrec.files import atomic_torch_save
from mtrec.training import distributed as D
from mtrec.training.batching import epoch_batches, epoch_generator, example_lengths
from mtrec.training.checkpoint import (
    load_checkpoint,
    rng_state,
    set_rng_state,
    step_paths,
)
from mtrec.training.memory import PeakMemory
from mtrec.training.reuse import take_stage
from mtrec.training.stage import Stage, StageResult

if TYPE_CHECKING:
    from mtrec.components import Run
    from mtrec.evaluation.evaluator import EvalReport

# One line per epoch; `mtrec run` shows it when progress bars are off (a log file, a batch job).
log = logging.getLogger("mtrec.training")


def trainable_parameters(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    params = list(stage.parameters(model)) if stage.parameters else [p for p in model.parameters() if p.requires_grad]
    if isinstance(stage.combine, nn.Module):
        params += [p for p in stage.combine.parameters() if p.requires_grad]
    if not params:
        raise RuntimeError(f"stage {stage.name!r} has no trainable parameters")
    return params


def stage_key(index: int, name: str) -> str:
    """File-safe, ordered, unique name of a stage's resume files (stage names may repeat)."""
    return f"{index:03d}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclasses.dataclass
class StageState:
    """A stage's training progress: what its resume checkpoint holds besides the model, optimizer,
    lr scheduler, combiner and RNG states (``VERSION`` is written with it; a checkpoint of another
    version is refused rather than misread)."""

    VERSION = 1

    epoch: int = 0
    best_value: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    since_best: int = 0
    history: list[dict] = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0
    elapsed: float = 0.0
    stopped: bool = False
    best_validation: dict | None = None  # the best epoch's per-domain validation (StageResult.best_validation)

    def observe(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Early stopping's bookkeeping after validating ``epoch``: True (and a copy of the
        weights kept) when ``value`` is a new best, else one more validation since the best."""
        if value > self.best_value:
            self.best_value, self.best_epoch, self.since_best = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        self.since_best += 1
        return False

    def checkpoint(self, **extra: Any) -> dict:
        """The fields (not copied: the checkpoint is written at once), the version, and ``extra``."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**fields, "state_version": self.VERSION, **extra}

    @classmethod
    def from_checkpoint(cls, last: dict, path: Path) -> "StageState":
        version = last.get("state_version", cls.VERSION)  # checkpoints before the version field: 1
        if version != cls.VERSION:
            from mtrec.errors import UserError

            raise UserError(f"{path}: a resume checkpoint of format {version}; this mtrec reads format {cls.VERSION}")
        # best_validation came later within format 1: older files lack it, and it defaults to None.
        fields = {f.name: last[f.name] for f in dataclasses.fields(cls) if f.name != "best_validation"}
        return cls(**fields, best_validation=last.get("best_validation"))


def train_stage(run: "Run", model: nn.Module, stage: Stage) -> StageResult:
    index = run.stage_counter()
    key = stage_key(index, stage.name)
    done_path, last_path = step_paths(run.run_dir, key)
    device = run.device
    model.to(device)
    if isinstance(stage.combine, nn.Module):
        stage.combine.to(device)

    done = _read_on_main(done_path)
    if done is None and stage.reusable:  # transfer.from_run: an earlier run trained this stage
        done = D.broadcast_object(take_stage(run, key, stage.name, done_path) if D.is_main() else None)
    if done is not None:  # resumed run (this stage finished before the interruption), or taken
        return _restore_finished(model, stage, done)

    # Ranks draw different dropout masks and negatives; the global RNG is left as it was found,
    # so work between stages sees the same random state on every rank.
    forked = torch.random.fork_rng(devices=[device] if device.type == "cuda" else []) if D.is_distributed() else nullcontext()
    with forked, PeakMemory(device) as peak:
        if D.is_distributed():
            torch.manual_seed(D.stage_seed(run.seed, index))
        result = _train(run, model, stage, index, last_path)
    result.peak_rss_mb, result.peak_gpu_mb = peak.rss_mb, peak.gpu_mb

    states = _states_of_all_ranks()
    if D.is_main():
        final = {
            "name": stage.name,
            "model": model.state_dict(),
            "combine": stage.combine.state_dict() if isinstance(stage.combine, nn.Module) else None,
            "result": dataclasses.asdict(result),
            "rng": states,
        }
        atomic_torch_save(final, done_path)
        last_path.unlink(missing_ok=True)
        _logged_marker(last_path).unlink(missing_ok=True)
    return result


def _train(run: "Run", model: nn.Module, stage: Stage, index: int, last_path: Path) -> StageResult:
    cfg = run.config.training
    epochs = stage.epochs or cfg.epochs
    lr = stage.lr or cfg.lr
    batch_size = stage.batch_size or cfg.batch_size
    weight_decay = cfg.weight_decay if stage.weight_decay is None else stage.weight_decay
    patience = stage.patience or cfg.patience
    decay_patience = stage.lr_decay_patience or cfg.lr_decay_patience
    device = run.device
    world = D.world()

    tensors = model.train_tensors(run, stage.domains)
    n = next(iter(tensors.values())).shape[0]
    if n == 0:
        raise RuntimeError(f"stage {stage.name!r}: no training examples in its domains")
    if cfg.max_train_examples and n > cfg.max_train_examples:
        keep = torch.randperm(n, generator=torch.Generator().manual_seed(run.seed))[: cfg.max_train_examples]
        tensors = {k: v[keep] for k, v in tensors.items()}
        n = cfg.max_train_examples
    tensors = {k: v.to(device) for k, v in tensors.items()}

    params = trainable_parameters(model, stage)
    # One fused kernel on CUDA; multi-tensor ops on CPU (far fewer tiny kernels than per-parameter).
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused, foreach=not fused)
    step, undo = _step_function(run, model, stage, params)
    # Each rank's share of each epoch's seeded order; the ranks' batches together are the global batch.
    sampler = DistributedSampler(range(n), num_replicas=world.size, rank=world.rank, shuffle=True, seed=run.seed + index)
    local_batch = math.ceil(batch_size / world.size)
    steps_per_epoch = math.ceil(len(sampler) / local_batch)
    # The warm-up ends with the first epoch at the latest: a longer one would spend a small domain's
    # first epochs, or a one-epoch fine-tuning stage's whole budget (a LoRA stage of 20 batches under a
    # 200-step warm-up), at a fraction of the stage's lr.  So every validation judges a warmed-up model.
    warmup_steps = min(cfg.warmup_steps, steps_per_epoch)
    scheduler = lr_scheduler(optimizer, cfg, epochs * steps_per_epoch, warmup_steps)
    if D.is_main() and warmup_steps:
        log.info(f"stage {stage.name}: {n} examples, {steps_per_epoch} steps an epoch, lr warm-up over {warmup_steps} "
                 f"steps{' (training.warmup_steps capped at one epoch)' if warmup_steps < cfg.warmup_steps else ''}")
    lengths = example_lengths(model, tensors) if cfg.length_buckets else None  # once per stage
    amp = run.autocast

    state = StageState()
    last = _read_on_main(last_path)
    if last is not None:  # resumed in the middle of this stage
        model.load_state_dict(last["model"])
        optimizer.load_state_dict(last["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(last["scheduler"])
        if last["combine"] is not None:
            stage.combine.load_state_dict(last["combine"])
        state = StageState.from_checkpoint(last, last_path)
        set_rng_state(last["rng"][world.rank if len(last["rng"]) == world.size else 0])
        if D.is_main() and _logged_epoch(last_path) < last["epoch"]:  # killed between checkpoint and logging
            run.log_metrics(last["rows"])
            _mark_logged(last_path, last["epoch"])
    resumed_from, elapsed_before = state.epoch, state.elapsed
    scheduler_state = (lambda: scheduler.state_dict()) if scheduler is not None else (lambda: None)

    started = time.perf_counter()
    if last is None and stage.score_start and stage.validate:
        # Epoch 0: the starting model is the best to beat (checkpointed, so a resume never redoes it).
        epoch_start = time.perf_counter()
        # An earlier stage may have validated these very weights on these users (start_validation).
        metrics, rows = _validate(run, model, stage, 0, state, done=stage.start_validation)
        row = {"epoch": 0, **metrics}
        if D.is_main():
            log.info(epoch_line(stage.name, 0, epochs, row, cfg.select_metric, state, time.perf_counter() - epoch_start))
        state.history.append(row)
        state.elapsed = time.perf_counter() - started
        _save_last(last_path, model, optimizer, stage, state.checkpoint(rows=rows, scheduler=scheduler_state()))
        run.log_metrics(rows)
        if D.is_main():
            _mark_logged(last_path, 0)
    bar = tqdm(range(state.epoch + 1, epochs + 1), desc=f"{stage.name}", unit="epoch",
               disable=not (run.progress and D.is_main()), initial=state.epoch, total=epochs)
    try:
        for epoch in bar if not state.stopped else []:
            epoch_start = time.perf_counter()
            sampler.set_epoch(epoch)
            order = torch.as_tensor(list(sampler), device=device)
            batches = epoch_batches(model, tensors, order, local_batch, epoch_generator(run.seed, index, epoch),
                                    lengths=lengths, bucket=cfg.length_buckets)
            mean_loss = _train_epoch(model, tensors, batches, step, optimizer, scheduler, params, cfg.max_grad_norm,
                                     amp, device)
            trained = time.perf_counter() - epoch_start
            state.train_seconds += trained
            state.epoch = epoch
            row: dict = {"epoch": epoch, "loss": D.mean_over_ranks(mean_loss)}
            # The epoch's mean training loss is a registry row like the validation metrics, so the
            # registry alone (UI, TensorBoard export, another machine) has the loss curve.
            rows: list[dict] = [{"stage": stage.name, "split": "train", "domain": AVERAGE, "name": "loss", "k": None,
                                 "value": float(row["loss"]), "step": epoch}]
            if stage.validate and (epoch % cfg.eval_every == 0 or epoch == epochs):
                metrics, valid_rows = _validate(run, model, stage, epoch, state)
                rows += valid_rows
                row.update(metrics)
                if cfg.lr_schedule == "plateau" and state.since_best and state.since_best % decay_patience == 0:
                    decay_on_plateau(scheduler, optimizer, cfg.lr_decay_factor)
                bar.set_postfix(loss=f"{row['loss']:.4f}", best=state.best_epoch,
                                **{f"val_{cfg.select_metric}": f"{row[cfg.select_metric]:.4f}"})
                state.stopped = state.since_best >= patience
            else:
                bar.set_postfix(loss=f"{row['loss']:.4f}")
            if D.is_main():
                log.info(epoch_line(stage.name, epoch, epochs, row, cfg.select_metric, state,
                                    time.perf_counter() - epoch_start, trained))
            state.history.append(row)
            state.elapsed = elapsed_before + time.perf_counter() - started
            # Checkpoint (with this epoch's rows), log, then mark them logged: a resumed stage logs
            # an epoch's rows once even when the kill fell between the checkpoint and the registry.
            _save_last(last_path, model, optimizer, stage, state.checkpoint(rows=rows, scheduler=scheduler_state()))
            run.log_metrics(rows)
            if D.is_main():
                _mark_logged(last_path, epoch)
            if state.stopped:
                break
    finally:
        bar.close()
        undo()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
        best_epoch, best_value = state.best_epoch, state.best_value
    else:  # no validation in this stage: the last epoch is the result
        best_epoch, best_value = state.epoch, float("nan")
    epochs_run = state.epoch
    return StageResult(
        name=stage.name,
        best_epoch=best_epoch,
        best_value=best_value,
        epochs_run=epochs_run,
        seconds=elapsed_before + time.perf_counter() - started,
        seconds_per_epoch=state.train_seconds / max(epochs_run, 1),
        history=state.history,
        resumed_from_epoch=resumed_from,
        epoch_cap=epochs,
        capped=(not stage.intermediate and state.best_state is not None and epochs_run >= epochs
                and best_epoch >= epochs_run),
        intermediate=stage.intermediate,
        best_validation=state.best_validation if state.best_state is not None else None,
    )


def _validate(run: "Run", model: nn.Module, stage: Stage, epoch: int, state: StageState,
              done: "EvalReport | None" = None) -> tuple[dict, list[dict]]:
    """Validate ``model`` after ``epoch`` (or take ``done``, its validation already computed),
    update early stopping in ``state`` (a new best is also written to the stage's checkpoint);
    return the average metrics and the registry rows."""
    cfg = run.config.training
    judged = stage.validate_on if stage.validate_on is not None else stage.domains
    report = done if done is not None else run.evaluate({d: model for d in judged}, "valid", judged)
    if state.observe(epoch, report.get(cfg.select_metric), model):
        state.best_validation = {"domains": list(judged), "metrics": report.metrics, "counts": report.counts}
        if D.is_main():
            atomic_torch_save(state.best_state, run.checkpoint_path(stage.name))
    return dict(report.metrics[AVERAGE]), report.rows(stage=stage.name, step=epoch)


def _train_epoch(model: nn.Module, tensors: dict[str, torch.Tensor], batches: Any, step: Callable,
                 optimizer: torch.optim.Optimizer, scheduler: Any, params: list[nn.Parameter],
                 max_grad_norm: float | None, amp: bool, device: torch.device) -> float:
    """One pass over ``batches`` (index tensors into ``tensors``): forward, backward, clip, step,
    lr schedule.  Returns this process's mean loss."""
    model.train()
    total, n = 0.0, 0
    for idx in batches:
        batch = {k: v[idx] for k, v in tensors.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = step(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach())
        n += 1
    return total / max(n, 1)


def lr_scheduler(optimizer: torch.optim.Optimizer, cfg: Any, training_steps: int, warmup_steps: int) -> Any:
    """transformers' scheduler for ``training.lr_schedule`` with ``warmup_steps`` over ``training_steps``
    optimizer steps; None for a constant lr without warm-up (the optimizer's lr is left alone)."""
    if cfg.lr_schedule == "constant" and warmup_steps == 0:
        return None
    from transformers import get_scheduler

    name = "constant_with_warmup" if cfg.lr_schedule in ("constant", "plateau") else cfg.lr_schedule
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=training_steps)


def decay_on_plateau(scheduler: Any, optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Scale the plateau schedule's base learning rates by ``factor``.  They live in the scheduler's
    state dict, so a resumed stage continues at the decayed rate."""
    scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    for group, lr, lam in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = lr * lam(scheduler.last_epoch)


def epoch_line(stage: str, epoch: int, epochs: int, row: dict, metric: str, state: StageState, seconds: float,
               trained: float | None = None) -> str:
    """``stage unified: epoch 3/8  loss 2.1345  val ndcg@10 0.0123 (best 0.0130 @2)  81 s (training 52 s)``

    The part in parentheses appears on validated epochs: the rest of the epoch's seconds is the
    validation (a generative model's beam search can cost as much as its training).  Epoch 0 (a
    ``score_start`` stage's starting model) has no loss: ``... epoch 0/8  start  val ...``.
    """
    line = f"stage {stage}: epoch {epoch}/{epochs}  " + (f"loss {row['loss']:.4f}" if "loss" in row else "start")
    if metric in row:
        line += f"  val {metric} {row[metric]:.4f} (best {state.best_value:.4f} @{state.best_epoch})"
    line += f"  {seconds:.0f} s"
    return line + (f" (training {trained:.0f} s)" if trained is not None and metric in row else "")


def _step_function(run: "Run", model: nn.Module, stage: Stage, params: list[nn.Parameter]) -> tuple[Callable, Callable[[], None]]:
    """``batch -> scalar loss`` for this process, and what to undo when the stage ends."""
    compile_it = run.config.training.compile and run.device.type == "cuda"
    if D.is_distributed():
        ddp, undo = D.wrap_ddp(model, stage.combine, params, run.device)
        return (torch.compile(ddp) if compile_it else ddp), undo
    loss_fn = torch.compile(model.loss) if compile_it else model.loss
    return (lambda batch: stage.combine(loss_fn(batch))), (lambda: None)


def _save_last(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, stage: Stage, state: dict) -> None:
    states = _states_of_all_ranks()
    if not D.is_main():
        return
    checkpoint = dict(state, model=model.state_dict(), optimizer=optimizer.state_dict(), rng=states, name=stage.name,
                      combine=stage.combine.state_dict() if isinstance(stage.combine, nn.Module) else None)
    atomic_torch_save(checkpoint, path)


def _logged_marker(last_path: Path) -> Path:
    return last_path.with_name(last_path.name.replace(".last.pt", ".logged"))


def _mark_logged(last_path: Path, epoch: int) -> None:
    from mtrec.files import atomic_write_text

    atomic_write_text(_logged_marker(last_path), str(epoch))


def _logged_epoch(last_path: Path) -> int:
    """The last epoch whose rows reached the registry (-1: none yet; epoch 0 is a ``score_start`` validation)."""
    marker = _logged_marker(last_path)
    return int(marker.read_text()) if marker.is_file() else -1


def _states_of_all_ranks() -> list[dict]:
    return D.all_gather_objects(rng_state())


def _read_on_main(path: Path) -> Any:
    """Rank 0 reads a resume file (if there is one) and hands it to every rank."""
    data = load_checkpoint(path) if D.is_main() and path.is_file() else None
    return D.broadcast_object(data)


def _restore_finished(model: nn.Module, stage: Stage, done: dict) -> StageResult:
    if done["name"] != stage.name:
        raise RuntimeError(
            f"cannot resume: the run's stage at this position was {done['name']!r}, now {stage.name!r} "
            "(did the plugin or its config change since the run started?)"
        )
    model.load_state_dict(done["model"])
    if done["combine"] is not None:
        stage.combine.load_state_dict(done["combine"])
    states = done["rng"]
    set_rng_state(states[D.world().rank if len(states) == D.world().size else 0])
    return StageResult(**done["result"])
