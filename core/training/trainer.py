"""The training loop every stage of every recipe runs through.

Training tensors live on the device for the whole stage and are sliced by a seeded permutation
each epoch: no DataLoader workers, no per-batch host-to-device copies, and the same batches in the
same order on every CPU run.  The best epoch by validation ``select_metric`` (NDCG@10 by default)
is kept and restored at the end; the test split is never touched here.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from mtrec.training.checkpoint import atomic_torch_save
from mtrec.training.stage import Stage, StageResult

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


def trainable_parameters(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    params = list(stage.parameters(model)) if stage.parameters else [p for p in model.parameters() if p.requires_grad]
    if isinstance(stage.combine, nn.Module):
        params += [p for p in stage.combine.parameters() if p.requires_grad]
    if not params:
        raise RuntimeError(f"stage {stage.name!r} has no trainable parameters")
    return params


def train_stage(run: "RunContext", model: nn.Module, stage: Stage) -> StageResult:
    cfg = run.config.training
    epochs = stage.epochs or cfg.epochs
    lr = stage.lr or cfg.lr
    batch_size = stage.batch_size or cfg.batch_size
    weight_decay = cfg.weight_decay if stage.weight_decay is None else stage.weight_decay
    patience = stage.patience or cfg.patience
    device = run.device

    model.to(device)
    if isinstance(stage.combine, nn.Module):
        stage.combine.to(device)
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
    loss_fn = torch.compile(model.loss) if (cfg.compile and device.type == "cuda") else model.loss
    generator = torch.Generator().manual_seed(run.seed + run.stage_counter())
    amp = run.autocast

    best_value, best_epoch, best_state, since_best = -math.inf, 0, None, 0
    history: list[dict] = []
    started = time.perf_counter()
    train_seconds = 0.0
    epochs_run = 0
    bar = tqdm(range(1, epochs + 1), desc=f"{stage.name}", unit="epoch", disable=not run.progress)
    for epoch in bar:
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total, batches = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = {k: v[idx] for k, v in tensors.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = stage.combine(loss_fn(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        train_seconds += time.perf_counter() - epoch_start
        epochs_run = epoch
        row: dict = {"epoch": epoch, "loss": total / max(batches, 1)}
        if stage.validate and (epoch % cfg.eval_every == 0 or epoch == epochs):
            judged = stage.validate_on if stage.validate_on is not None else stage.domains
            report = run.evaluate({d: model for d in judged}, "valid", judged)
            value = report.get(cfg.select_metric)
            row.update(report.metrics["average"])
            run.log_metrics(report.rows(stage=stage.name, step=epoch))
            if value > best_value:
                best_value, best_epoch, since_best = value, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                atomic_torch_save(best_state, run.checkpoint_path(stage.name))
            else:
                since_best += 1
            bar.set_postfix(loss=f"{row['loss']:.4f}", **{f"val_{cfg.select_metric}": f"{value:.4f}", "best": best_epoch})
            history.append(row)
            if since_best >= patience:
                break
        else:
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            history.append(row)
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # no validation in this stage: the last epoch is the result
        best_epoch, best_value = epochs_run, float("nan")
    seconds = time.perf_counter() - started
    return StageResult(
        name=stage.name,
        best_epoch=best_epoch,
        best_value=best_value,
        epochs_run=epochs_run,
        seconds=seconds,
        seconds_per_epoch=train_seconds / max(epochs_run, 1),
        history=history,
    )
