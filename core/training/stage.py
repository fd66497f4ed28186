"""What a transfer strategy plans: stages, and how per-domain losses combine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from mtrec.components import Run
    from mtrec.evaluation.evaluator import EvalReport


# Capabilities about losses (see Component.provides):
# an encoder with TASK_LOSSES keys its DomainLoss "single/<domain>" and "cross/<domain>" (its
# single-domain and cross-domain tasks); a transfer strategy with LOSS_WEIGHTING has a method
# ``combiner(run, model, domains) -> Callable[[DomainLoss], Tensor]`` that other strategies may
# borrow for their stages (unified-then-lora's ``loss_weighting``).
TASK_LOSSES = "task-losses"
LOSS_WEIGHTING = "loss-weighting"


@dataclass
class DomainLoss:
    """An encoder's loss for one batch, kept apart by domain (and task).

    ``losses[key]`` is the mean loss over ``counts[key]`` examples; keys are domain names,
    optionally prefixed by a task (``"single/Arts"``, ``"cross/Arts"``).  Keeping them apart lets a
    transfer strategy (e.g. negative-transfer-gap weighting) reweight domains without knowing the
    model.  ``extra`` holds auxiliary terms already weighted by the encoder (regularisers, mutual
    information losses); they are added as they are.
    """

    losses: dict[str, torch.Tensor]
    counts: dict[str, int]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def combine_by_count(loss: DomainLoss) -> torch.Tensor:
    """Mean over all examples of all domains (what one model on the union of domains minimises)."""
    total = sum(loss.counts.values())
    combined = sum(value * (loss.counts[key] / total) for key, value in loss.losses.items())
    return combined + sum(loss.extra.values())


def combine_equally(loss: DomainLoss) -> torch.Tensor:
    """Each domain (key) weighs the same, however many examples it has."""
    combined = sum(loss.losses.values()) / len(loss.losses)
    return combined + sum(loss.extra.values())


@dataclass
class Stage:
    """One training stage.

    ``domains`` are the domain indices whose training data the stage sees; ``validate_on`` (default:
    the same) are those whose validation metrics select its best epoch.  ``parameters`` picks what trains (default: every parameter
    with ``requires_grad``).  ``combine`` turns a :class:`DomainLoss` into the scalar to minimise;
    a combiner that is an ``nn.Module`` has its own parameters trained alongside the model.
    Training hyper-parameters not given fall back to the run's ``training`` section.

    ``score_start`` (for stages that fine-tune weights an earlier stage trained): the model the
    stage starts from is validated before epoch 1 and logged as epoch 0; it is the best epoch to
    beat, so when no epoch beats it the stage ends with the starting weights (best_epoch 0).
    ``start_validation``: that epoch-0 validation, when an earlier stage already computed it for the
    same weights on the same users (:func:`reusable_validation`); the stage then uses it instead of
    validating again.
    """

    name: str
    domains: list[int]
    parameters: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None
    combine: Callable[[DomainLoss], torch.Tensor] = combine_by_count
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    patience: int | None = None
    lr_decay_patience: int | None = None  # lr_schedule=plateau: validations without a new best per decay
    validate: bool = True
    validate_on: list[int] | None = None  # domains whose validation selects the best epoch (default: ``domains``)
    score_start: bool = False  # validate the starting model as epoch 0, the initial best (fine-tuning stages)
    start_validation: "EvalReport | None" = None  # score_start's epoch 0, already computed (reusable_validation)
    # A round of a longer schedule that a later stage of the same model continues (alternate training's
    # rounds before the last): its epoch count is the method's, not a budget, so it is never flagged capped.
    intermediate: bool = False
    # Trained from config outside the strategy's per_domain_params only (unified-then-lora's unified
    # stage): a run with transfer.from_run takes it, finished, from that run (mtrec.training.reuse).
    reusable: bool = False


@dataclass
class StageResult:
    name: str
    best_epoch: int
    best_value: float
    epochs_run: int
    seconds: float
    seconds_per_epoch: float
    history: list[dict] = field(default_factory=list)  # per epoch: {"epoch", "loss", metric...}; epoch 0 (score_start) has no loss
    peak_rss_mb: float = float("nan")  # peak resident memory of the process during the stage (MiB)
    peak_gpu_mb: float | None = None  # peak CUDA memory allocated during the stage (MiB), on GPU only
    resumed_from_epoch: int = 0  # > 0 when `mtrec run --resume` continued the stage after that epoch
    epoch_cap: int = 0  # the stage's planned epochs
    # The best validation epoch is the last one, at the cap: the budget ended the stage, not early
    # stopping, so the model may still have been improving (benchmarks mark such rows "capped").
    # Never set for an intermediate stage (Stage.intermediate), which a later stage continues.
    capped: bool = False
    intermediate: bool = False
    # The best epoch's validation (None without one): {"domains": validated domain indices,
    # "metrics": domain name -> metric -> value, "counts": domain name -> users}.  Plain data, so it
    # travels in the stage's resume file; a later stage starting from these weights may reuse it.
    best_validation: dict[str, Any] | None = None
    # The run this stage was taken from (transfer.from_run), whose timings and history these are.
    from_run: str | None = None


def reusable_validation(run: "Run", earlier: StageResult, domain: int) -> "EvalReport | None":
    """``earlier``'s best-epoch validation of ``domain`` alone, as a stage that starts from
    ``earlier``'s weights and validates on ``domain`` would compute it at its epoch 0; None when
    that is not guaranteed.

    Guaranteed under the full-ranking protocol when ``domain``'s validation examples are the same
    rows either way: the evaluator scores each domain's users in batches of their own, so the same
    weights give the same numbers to the bit.  A sampled protocol draws negatives across all the
    validated domains at once, and ``evaluation.valid_max_users`` samples users across them, so
    those cases validate again.  Used for the per-domain fine-tuning stages after a unified stage:
    their epoch 0 (the unified model) is then free.
    """
    from mtrec.evaluation.evaluator import AVERAGE, EvalReport

    done = earlier.best_validation
    if done is None or domain not in done["domains"] or run.config.evaluation.protocol != "full":
        return None
    together = run.examples("valid", list(done["domains"]))
    alone = run.examples("valid", [domain])
    rows = together["domain"] == domain
    if set(together) != set(alone) or any(not np.array_equal(together[k][rows], alone[k]) for k in alone):
        return None
    name = run.dataset.domains[domain]
    if name not in done["metrics"]:
        return None
    metrics, count = dict(done["metrics"][name]), int(done["counts"][name])
    return EvalReport("valid", metrics={name: metrics, AVERAGE: dict(metrics)}, counts={name: count, AVERAGE: count})
