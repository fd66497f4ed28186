"""``idgenrec-alternate``: IDGenRec's alternate training (§2.5), optionally with per-domain LoRA.

One ID generator and one recommender serve every domain.  Rounds ``r = 1 .. rounds``:

1. **generator** (rounds after the first; ``generator_epochs``): the recommender is frozen and the
   generator learns through Eq. 5 (:class:`GeneratorObjective`; with ``encoder.params.user_ids``
   on, through the user IDs too); then every item's ID is regenerated with Algorithm 1 and the
   recommender's ID table and the decoder's tries follow (user IDs are cached per identifier
   ``version``, so they are rewritten by the new generator when next needed);
2. **recommender** (``recommender_epochs``; the last round ``last_round_epochs``): Eq. 4 on the
   source domains' training data, early-stopped on the targets' validation; from round 2 on, the
   recommender it starts from is scored first (epoch 0) and kept when no epoch beats it.  Rounds
   before the last are ``intermediate`` stages: their length is the schedule's, never "capped".

The paper opens each round with the generator, against a pretrained T5 recommender; here the
recommender starts from random weights, so a generator step before it has learnt anything would
follow noise: round 1 trains the recommender only.  Schedules (Table 5): ``alternate``;
``rec-only`` (the warm-started generator's IDs throughout; ``rounds x recommender_epochs``);
``id-only`` (the recommender never trains; ``rounds x generator_epochs`` generator epochs).

After the rounds, ``mode`` picks the core's per-domain step (``unified-then-lora``): ``none``
(default, the paper), ``lora`` or ``full``.  Targets left out of ``domains.sources`` are zero-shot:
their items get IDs from their text, the recommender never sees their interactions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from mtrec.builtins.lora import UnifiedThenLoRA, UnifiedThenLoRAParams
from mtrec.errors import ConfigError
from mtrec.training.stage import Stage

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


class AlternateParams(UnifiedThenLoRAParams):
    mode: Literal["lora", "full", "none"] = Field(
        "none", description="After alternate training: per-domain LoRA, full fine-tuning, or none (the paper).")
    schedule: Literal["alternate", "rec-only", "id-only"] = Field(
        "alternate", description="Table 5: train both alternately, only the recommender, or only the generator.")
    rounds: int = Field(3, ge=1, description="Alternate-training iterations (paper: 3).")
    recommender_epochs: int | None = Field(None, ge=1, description="Per round (paper: 10; default training.epochs).")
    last_round_epochs: int | None = Field(
        None, ge=1, description="The last round's recommender epochs (default recommender_epochs): room for it to "
        "early-stop when a comparison needs every model trained to convergence.")
    generator_epochs: int = Field(1, ge=1, description="Per round (paper: 1).")
    generator_lr: float = Field(1e-4, gt=0, description="Paper: 1e-8 on a pretrained T5; see the README.")
    generator_batch_size: int = Field(16, ge=1, description="Examples per generator step (Eq. 5 holds a "
                                      "[history items x L x vocabulary] softmax).")
    generator_max_examples: int | None = Field(None, ge=1, description="Cap on examples per generator epoch.")


class GeneratorObjective(nn.Module):
    """The generator stage's model: Eq. 5 through the frozen recommender; trains the generator only."""

    def __init__(self, recommender: nn.Module, identifier: object, max_examples: int | None, seed: int) -> None:
        super().__init__()
        self.recommender = recommender
        self.generator = identifier.generator
        self.identifier = identifier
        self.max_examples = max_examples
        self.seed = seed

    def train_tensors(self, run: "RunContext", domains: list[int]) -> dict[str, torch.Tensor]:
        tensors = self.recommender.train_tensors(run, domains)
        n = tensors["target"].shape[0]
        if self.max_examples and n > self.max_examples:
            keep = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[: self.max_examples]
            tensors = {k: v[keep] for k, v in tensors.items()}
        return tensors

    def loss(self, batch: dict[str, torch.Tensor]):
        history = batch["history"]
        ident = self.identifier
        rec = self.recommender
        device = history.device
        items = probs = user_probs = None
        if "history" in getattr(rec, "slots", ("history",)):  # user_ids=only: no item ID in the prompt
            items = torch.unique(history[history > 0])
            ids = rec.item_token_table[items]
            cpu = items.cpu()
            probs = self.generator.soft_tokens(ident.text[cpu].to(device), ident.text_mask[cpu].to(device), ids,
                                               ident.copy_rows(cpu))
        if getattr(rec, "users", None) is not None:
            # user IDs take part in Eq. 5 too: the generator's distribution over each example's
            # current user ID (teacher-forced on it), from the same text the ID was written from
            text, mask = rec.users.text(history)
            user_probs = self.generator.soft_tokens(text, mask, rec.user_tokens(history),
                                                    text if ident.copy is not None else None)
        return rec.soft_loss(batch, items, probs, user_probs)


class AlternateTraining(UnifiedThenLoRA):
    # Its rounds regenerate the identifier after the identifier step, so no stage of one run can be
    # another's: transfer.from_run is refused for it before the run starts.
    per_domain_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: AlternateParams, run: "RunContext | None" = None) -> None:
        super().__init__(params, run)
        self.params: AlternateParams = params

    def _generator_round(self, run: "RunContext", model: nn.Module, r: int) -> None:
        p = self.params
        ident = run.identifier
        if getattr(ident, "generator", None) is None or not hasattr(ident, "regenerate"):
            raise ConfigError("transfer 'idgenrec-alternate' needs the 'textual-id' identifier (a trainable ID generator)")
        objective = GeneratorObjective(model, ident, p.generator_max_examples, run.seed + r)
        frozen = [q for q in model.parameters() if q.requires_grad]
        for q in frozen:
            q.requires_grad_(False)
        try:
            run.train_stage(objective, Stage(
                name=f"generator:{r}", domains=run.source_domains, epochs=p.generator_epochs, lr=p.generator_lr,
                batch_size=p.generator_batch_size, validate=False, weight_decay=0.0,
                parameters=lambda m: m.generator.parameters()))
        finally:
            for q in frozen:
                q.requires_grad_(True)
        ident.generator.eval()
        ident.regenerate(run, reason=f"round {r}")
        model.set_item_tokens(ident.item_tokens())

    def train_unified(self, run: "RunContext") -> nn.Module:
        p = self.params
        model = run.build_encoder()
        combine = self.unified_combiner(run, model)  # domain_weighting, or a borrowed loss_weighting
        for r in range(1, p.rounds + 1):
            if p.schedule == "id-only" or (p.schedule == "alternate" and r > 1):
                self._generator_round(run, model, r)
            if p.schedule != "id-only":
                # rounds after the first continue the previous round's recommender: it is scored as
                # epoch 0 (under the IDs the generator just rewrote) and kept if no epoch beats it.
                # Only the last round's length is a budget; the earlier ones are the schedule's.
                last = r == p.rounds
                epochs = (p.last_round_epochs or p.recommender_epochs) if last else p.recommender_epochs
                result = run.train_stage(model, Stage(name=f"recommender:{r}", domains=run.source_domains,
                                                      validate_on=run.target_domains, combine=combine,
                                                      epochs=epochs, score_start=r > 1, intermediate=not last))
                if last:  # the model the per-domain stages start from: their epoch 0 may reuse its validation
                    self.unified_result = result
        run.identifier.save(Path(run.run_dir) / "identifier")  # the final IDs, not the initial ones
        return model
