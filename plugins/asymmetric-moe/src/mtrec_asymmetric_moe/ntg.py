"""LC-NTG (papers/syncrec.md §4.3): loss correction with the negative transfer gap.

:class:`NTGWeighting` is a loss combiner (an ``nn.Module``, so the trainer trains its alpha and beta
alongside the model; the temperature delta is fixed).  It reads a :class:`DomainLoss` whose keys are
``single/<domain>`` and ``cross/<domain>`` -- any encoder that reports its single-domain and
cross-domain task losses that way can use it -- and per batch:

1. NTG per domain (Eq. 10): ``phi_d = L_single^d - L_cross^d`` (batch means, detached: it is a
   measurement, not something to optimise; 0 for a domain missing from either task this batch);
2. relative NTG (Eq. 11): ``lambda <- softmax((alpha * lambda + beta * phi) / delta)`` over the
   domains, lambda starting at 0 and carried from batch to batch; alpha and beta are learnt ("alpha
   and beta are learnable parameters", Eq. 11), delta is a fixed hyper-parameter (the paper does not
   learn it; the official code passes ``--temperature``, default 1) unless ``learn_temperature``;
3. loss correction (Eq. 12) and Eq. 18:
   ``eta * (sum_d L_single^d + sum_d s * lambda_d * L_cross^d) + extra`` where ``eta`` is the
   encoder's ``task_weight`` (1 if it has none), ``extra`` the encoder's own auxiliary terms and
   ``s`` = the number of domains (``scale: domains``; uniform lambda then equals no correction)
   or 1 (``scale: one``).

``correction: false`` keeps every ``lambda_d = 1`` (ablation A, "w/o LC-NTG").

The ``ntg-weighting`` transfer strategy trains one model on the source domains with this combiner,
early-stopped on the targets' validation average, like ``joint``.  It provides ``loss-weighting``:
other strategies borrow its combiner through :meth:`NTGWeightingStrategy.combiner` -- GMC's
``unified-then-lora`` does with ``loss_weighting: {name: ntg-weighting}`` over a ``seq2seq`` with
``task_losses: true`` (examples/mixes/ntg-on-gmc-unified.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from torch import nn

from mtrec.builtins.transfer import ModelSetStrategy
from mtrec.components import Params
from mtrec.errors import ConfigError
from mtrec.training.checkpoint import atomic_write_text
from mtrec.training.stage import DomainLoss, Stage

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


class NTGWeightingParams(Params):
    correction: bool = Field(True, description="Apply the NTG loss correction; false = every lambda_d is 1 (ablation A).")
    alpha: float = Field(1.0, description="Initial alpha of Eq. 11 (weight of the previous relative NTG).")
    beta: float = Field(1.0, description="Initial beta of Eq. 11 (weight of this batch's NTG).")
    temperature: float = Field(
        1.0, gt=0, description="Softmax temperature delta of Eq. 11, fixed (Eq. 11 learns only alpha and beta; "
                               "official code: --temperature, default 1); the initial value if learn_temperature.")
    learnable: bool = Field(
        True, description="Train alpha and beta with the model (Eq. 11: 'alpha and beta are learnable parameters'); "
                          "false keeps them at their initial values.")
    learn_temperature: bool = Field(
        False, description="Opt-in, in neither the paper nor the official code: also train delta (as exp of a "
                           "learnt log, starting at temperature).")
    scale: Literal["domains", "one"] = Field(
        "domains", description="Multiply lambda by the number of domains (uniform lambda = no correction) or not.")
    single_task: str = Field("single", description="Loss-key prefix of the single-domain task.")
    cross_task: str = Field("cross", description="Loss-key prefix of the cross-domain task.")


class NTGWeighting(nn.Module):
    def __init__(self, domains: list[str], *, task_weight: float = 1.0, correction: bool = True,
                 alpha: float = 1.0, beta: float = 1.0, temperature: float = 1.0, learnable: bool = True,
                 learn_temperature: bool = False, scale: str = "domains", single_task: str = "single",
                 cross_task: str = "cross") -> None:
        super().__init__()
        self.domains = list(domains)
        self.task_weight = float(task_weight)
        self.correction = correction
        self.scale = float(len(self.domains)) if scale == "domains" else 1.0
        self.single_task, self.cross_task = single_task, cross_task
        self.alpha = nn.Parameter(torch.tensor(float(alpha)), requires_grad=learnable)
        self.beta = nn.Parameter(torch.tensor(float(beta)), requires_grad=learnable)
        self.learn_temperature = learn_temperature
        log_temperature = torch.tensor(float(temperature)).log()
        if learn_temperature:
            # Opt-in only; delta = exp(log_temperature) stays positive whatever the optimiser does.
            self.log_temperature = nn.Parameter(log_temperature)
        else:
            # Eq. 11 learns alpha and beta only; delta is a hyper-parameter (the official code's fixed
            # --temperature).  A buffer, not a frozen parameter, so no optimiser ever sees it; the
            # state-dict key is the same in both cases.
            self.register_buffer("log_temperature", log_temperature)
        self.register_buffer("relative_ntg", torch.zeros(len(self.domains)))  # lambda, initialised to 0

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def split(self, loss: DomainLoss) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The loss's single- and cross-task terms by domain; anything else is a clear error."""
        tasks: dict[str, dict[str, torch.Tensor]] = {self.single_task: {}, self.cross_task: {}}
        for key, value in loss.losses.items():
            task, sep, domain = key.partition("/")
            if not sep or task not in tasks or domain not in self.domains:
                raise ConfigError(
                    f"transfer 'ntg-weighting' needs loss keys '{self.single_task}/<domain>' and "
                    f"'{self.cross_task}/<domain>' for domains {', '.join(self.domains)}; the encoder returned "
                    f"{', '.join(sorted(loss.losses))} (use an encoder that reports both tasks, e.g. 'syncrec')"
                )
            tasks[task][domain] = value
        return tasks[self.single_task], tasks[self.cross_task]

    def gap(self, single: dict[str, torch.Tensor], cross: dict[str, torch.Tensor]) -> torch.Tensor:
        """phi_d of Eq. 10 per domain (detached), 0 where the batch lacks one of the tasks."""
        phi = torch.zeros(len(self.domains), device=self.relative_ntg.device)
        for i, d in enumerate(self.domains):
            if d in single and d in cross:
                phi[i] = (single[d] - cross[d]).detach().float()
        return phi

    def weights(self, single: dict[str, torch.Tensor], cross: dict[str, torch.Tensor]) -> torch.Tensor:
        """lambda of this batch (Eq. 11), times the scale; updates the carried state."""
        if not self.correction:
            return torch.ones(len(self.domains), device=self.relative_ntg.device)
        phi = self.gap(single, cross)
        previous = self.relative_ntg.clone()  # the carried state; the graph keeps this copy
        lam = torch.softmax((self.alpha * previous + self.beta * phi) / self.temperature, dim=0)
        self.relative_ntg.copy_(lam.detach())
        return lam * self.scale

    def forward(self, loss: DomainLoss) -> torch.Tensor:
        single, cross = self.split(loss)
        weights = self.weights(single, cross)
        index = {d: i for i, d in enumerate(self.domains)}
        corrected = sum((weights[index[d]] * value for d, value in cross.items()), torch.zeros(()))
        tasks = sum(single.values(), torch.zeros(())) + corrected
        return self.task_weight * tasks + sum(loss.extra.values(), torch.zeros(()))

    def current(self) -> dict[str, float]:
        """The carried relative NTG per domain (what the last batch used), for logging."""
        return {d: float(v) for d, v in zip(self.domains, self.relative_ntg.tolist())}

    def summary(self) -> dict:
        """Final relative NTG, the learnt alpha and beta, and the temperature (fixed unless learnt)."""
        return {"relative_ntg": self.current(), "alpha": self.alpha.item(), "beta": self.beta.item(),
                "temperature": self.temperature.item(), "learn_temperature": self.learn_temperature,
                "correction": self.correction}


def ntg_combiner(run: "RunContext", model: nn.Module, params: NTGWeightingParams, domains: list[int]) -> NTGWeighting:
    """An :class:`NTGWeighting` for ``domains`` of ``run`` with ``model``'s task weight (eta)."""
    return NTGWeighting(
        [run.dataset.domains[d] for d in domains], task_weight=getattr(model, "task_weight", 1.0),
        correction=params.correction, alpha=params.alpha, beta=params.beta, temperature=params.temperature,
        learnable=params.learnable, learn_temperature=params.learn_temperature, scale=params.scale,
        single_task=params.single_task, cross_task=params.cross_task,
    ).to(run.device)


class NTGWeightingStrategy(ModelSetStrategy):
    """One model on the source domains, losses combined by :class:`NTGWeighting`."""

    def __init__(self, params: NTGWeightingParams, run: "RunContext | None" = None) -> None:
        self.params = params
        self.ntg: NTGWeighting | None = None  # this strategy's own combiner, once execute() ran

    def combiner(self, run: "RunContext", model: nn.Module, domains: list[int]) -> NTGWeighting:
        """The ``loss-weighting`` contract: this strategy's combiner for another strategy's stage."""
        return ntg_combiner(run, model, self.params, domains)

    def execute(self, run: "RunContext") -> dict[int, nn.Module]:
        model = run.build_encoder()
        self.ntg = ntg_combiner(run, model, self.params, run.source_domains)
        stage = Stage(name="joint-ntg", domains=run.source_domains, validate_on=run.target_domains,
                      combine=self.ntg)
        run.train_stage(model, stage)
        run.log_metrics([
            {"stage": stage.name, "split": "train", "domain": d, "name": "relative_ntg", "value": v}
            for d, v in self.ntg.current().items()
        ])
        return {d: model for d in run.target_domains}

    def save(self, models: dict[int, nn.Module], directory: Path) -> None:
        """The models (as ``joint`` saves them) and ``ntg.json``: the final relative NTG per domain,
        the learnt alpha and beta, and the temperature (what the correction ended up doing)."""
        super().save(models, directory)
        if self.ntg is not None:
            atomic_write_text(directory / "ntg.json", json.dumps(self.ntg.summary(), indent=2))
