"""``pretrain-match-finetune``: IDP's stages as one transfer strategy (papers/idp.md §2.3–2.6, §3.8).

1. **pretrain** — the pre-training encoder (the run's ``encoder``, by default the core ``sasrec``
   with BPR; or ``pretrain_encoder``) trains on the source domains that are not targets, merged
   with no user or item alignment (one model, every domain's sequences), early-stopped on their
   own validation split;
2. **matcher** — CDIM tuned on the source items (Eq. 5–7; :mod:`mtrec_id_matcher.matcher`), its
   behavioural positives found by faiss over the pre-trained ID embeddings;
3. **match** — every new item's top-m source items by CDIM similarity (faiss: exact, HNSW or IVF by
   catalogue size) and the similarity-weighted average of their pre-trained ID embeddings (Eq. 8–9);
4. **deploy / fine-tune** — §2.6's modes: one model per fine-tuned target, or with
   ``finetune_together`` one model trained on all of them at once (multi-domain encoders such as
   ``syncrec`` or ``man`` in mode ``new-encoder``).

Generated rows are written through :mod:`mtrec.embeddings`, so the fine-tuned encoder may keep its
ID embeddings in any tables the contract describes (MAN: global and per-domain local tables);
the pre-training encoder is read through its plain ``item_embedding``.  Everything that can be
checked before training is (the encoders' widths, the ID+text input), so a bad combination fails
in seconds rather than after pre-training.

Domain roles: targets that are among ``domains.sources`` are fine-tuned on their own data (mode
``finetune`` or ``new-encoder``); targets that are not (or every target under ``zero-shot``) get the
pre-trained encoder with generated embeddings as is.  ``cold-start`` (§3.8) pre-trains on the
targets themselves with a share of their items held out of training, then generates those items'
embeddings from the others and deploys without tuning.

Everything measured on the way (stage times, matcher losses, index kind, matching time) is kept
in ``self.report``, written to ``<run>/idp.json`` and saved with the models.
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from mtrec.builtins.transfer import ModelSetStrategy
from mtrec.config import format_errors
from mtrec.data.model import TRAIN, MultiDomainDataset
from mtrec.embeddings import has_plain_item_embedding, item_embedding_width
from mtrec.errors import ConfigError, UserError
from mtrec.training.checkpoint import atomic_torch_save, atomic_write_text, load_tensors, member, read_json
from mtrec.training.stage import Stage

from mtrec_id_matcher.embedding import (
    WIDTH_KEYS, IdPlusText, add_text, install_rows, item_table, pick_cold_items, reinit_rows, training_data_from,
    without_training_items,
)
from mtrec_id_matcher.matcher import FullMatcher, HeadMatcher, fit_matcher, to_numpy
from mtrec_id_matcher.matching import behavior_neighbors, choose_index, generate, pca_reduce
from mtrec_id_matcher.params import IDPParams

if TYPE_CHECKING:
    from mtrec.run_context import RunContext

NAME = "pretrain-match-finetune"


@dataclass
class Plan:
    pretrain: list[int]  # domains of the pre-training stage
    finetune: list[int]  # targets tuned on their own data
    deploy: list[int]  # targets served by the pre-trained encoder as is


def plan_domains(run: "RunContext", params: IDPParams) -> Plan:
    """Which domains pre-train, which targets fine-tune and which are deployed zero-shot."""
    names = run.dataset.domains
    targets, sources = run.target_domains, run.source_domains
    listed = lambda ds: ", ".join(names[d] for d in ds)  # noqa: E731
    if params.mode == "cold-start":
        outside = [d for d in targets if d not in sources]
        if outside:
            raise ConfigError(
                f"domains.sources: transfer.params.mode=cold-start pre-trains on the target domains themselves "
                f"(with some of their items held out), but {listed(outside)} is not among the sources"
            )
        return Plan(pretrain=list(targets), finetune=[], deploy=list(targets))
    pretrain = [d for d in sources if d not in targets]
    if not pretrain:
        raise ConfigError(
            f"domains.targets: IDP pre-trains on the source domains that are not targets, and every source is a "
            f"target (sources: {listed(sources)}; targets: {listed(targets)}); name the new domain(s) only, "
            f"e.g. --set 'domains.targets=[{names[targets[0]]}]'"
        )
    finetune = [] if params.mode == "zero-shot" else [d for d in targets if d in sources]
    deploy = [d for d in targets if d not in finetune]
    if deploy and not params.matcher:
        raise ConfigError(
            f"transfer.params.matcher=false: {listed(deploy)} would be deployed without fine-tuning and without any "
            "embedding for its items; add it to domains.sources (fine-tuning) or keep the matcher"
        )
    return Plan(pretrain, finetune, deploy)


def trained_items(dataset: MultiDomainDataset, domains: list[int], exclude: np.ndarray | None = None) -> np.ndarray:
    """Items of ``domains`` with at least one training interaction (their ID embeddings learned something)."""
    train = dataset.inter_item[(dataset.inter_role == TRAIN) & np.isin(dataset.inter_domain, domains)]
    items = np.unique(train)
    if exclude is not None and exclude.size:
        items = items[~np.isin(items, exclude)]
    return items


PRETRAIN_KEY = "transfer.params.pretrain_encoder"


def pretrain_choice(params: IDPParams, encoder_name: str, encoder_params: Any, catalogue: Any) -> tuple[Any, Any] | None:
    """The validated (component, params) of ``pretrain_encoder``, or None (the run's encoder pre-trains).

    Refuses an unknown encoder or key, another encoder outside mode ``new-encoder``, and two
    encoders whose widths differ where both params name it ``hidden`` (sasrec, syncrec, man); the
    built tables are compared again before pre-training for encoders that call it otherwise.
    """
    choice = params.pretrain_encoder
    if choice is None:
        return None
    key = PRETRAIN_KEY
    registered = catalogue.components["encoder"]
    if choice.name not in registered:
        raise ConfigError(f"{key}.name: unknown encoder {choice.name!r}; registered: {', '.join(sorted(registered))}")
    component = registered[choice.name]
    if "embeddings" not in component.provides:
        raise ConfigError(f"{key}.name: encoder {choice.name!r} does not provide item `embeddings`, which IDP transfers")
    try:
        pre_params = component.params.model_validate(choice.params)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, prefix=f"{key}.params", what=f"encoder {choice.name!r}")) from None
    same = choice.name == encoder_name and pre_params == encoder_params
    if not same and params.mode != "new-encoder":
        raise ConfigError(
            f"{key}: only transfer.params.mode=new-encoder trains another encoder after pre-training; mode "
            f"{params.mode!r} deploys or fine-tunes the pre-trained encoder itself (leave {key} unset)"
        )
    ours, theirs = getattr(pre_params, "hidden", None), getattr(encoder_params, "hidden", None)
    if isinstance(ours, int) and isinstance(theirs, int) and ours != theirs:
        raise ConfigError(
            f"{key}.params.hidden: the pre-training encoder {choice.name!r} is {ours}-d but encoder "
            f"{encoder_name!r} (encoder.params.hidden) is {theirs}-d; generated ID embeddings are installed as "
            f"they are, so give both the same width ({WIDTH_KEYS})"
        )
    return component, pre_params


def check_config(params: IDPParams, parts: dict[str, tuple[Any, Any]], catalogue: Any) -> None:
    """Config-time check (``Component.check``): ``pretrain_encoder`` against the run's encoder."""
    encoder, encoder_params = parts["encoder"]
    pretrain_choice(params, encoder.name, encoder_params, catalogue)


class PretrainMatchFinetune(ModelSetStrategy):
    def __init__(self, params: IDPParams, run: "RunContext | None" = None) -> None:
        self.params = params
        self.report: dict[str, Any] = {}
        self.matches: dict[str, np.ndarray] = {}
        self.matcher_state: dict[str, torch.Tensor] | None = None  # the tuned head (head mode), saved with the models
        self._pretrained: nn.Module | None = None  # the pre-trained encoder, as deployed to zero-shot targets
        self._pretrain = self._pretrain_component(run) if run is not None else None

    # ------------------------------------------------------------------ encoders
    def _pretrain_component(self, run: "RunContext") -> tuple[Any, Any] | None:
        """The (component, params) of ``pretrain_encoder`` (checked again: a strategy may be built without resolve)."""
        return pretrain_choice(self.params, run.config.encoder.name, run.params["encoder"], run.plugins.catalogue)

    def _build_pretrain(self, run: "RunContext") -> nn.Module:
        if self._pretrain is None:
            return run.build_encoder()
        component, params = self._pretrain
        return component.factory(params, run).to(run.device)

    # ------------------------------------------------------------------ the run
    def execute(self, run: "RunContext") -> dict[int, nn.Module]:
        p = self.params
        dataset = run.dataset
        names = dataset.domains
        plan = plan_domains(run, p)
        timings: dict[str, float] = {}
        self.report = {
            "mode": p.mode, "matcher": p.matcher, "behavior_loss": p.behavior_loss, "id_text": p.id_text,
            "pretrain_domains": [names[d] for d in plan.pretrain], "finetune_domains": [names[d] for d in plan.finetune],
            "deploy_domains": [names[d] for d in plan.deploy], "finetune_together": p.finetune_together,
            "timings": timings,
        }

        cold = pick_cold_items(dataset, plan.pretrain, p.cold_fraction, run.seed) if p.mode == "cold-start" else None
        new_domains = plan.finetune + plan.deploy
        target_items = cold if cold is not None else np.concatenate([dataset.domain_items[d] for d in sorted(new_domains)])

        # 1. pre-training on the sources, merged (after every check that needs the built encoders)
        pre = self._build_pretrain(run)
        self._check_encoders(run, pre, plan, target_items)
        held_out = training_data_from(pre, without_training_items(dataset, cold)) if cold is not None else nullcontext()
        with held_out:
            result = run.train_stage(pre, Stage(name="pretrain", domains=plan.pretrain, validate_on=plan.pretrain,
                                                epochs=p.pretrain_epochs, lr=p.pretrain_lr))
        timings["pretrain_seconds"] = result.seconds
        pre.eval()

        # 2-3. matcher and generated embeddings (or, w/o M, fresh rows)
        text_rows = None
        if p.matcher:
            source_items = trained_items(dataset, plan.pretrain, exclude=cold)
            source_vec, target_vec = self._matcher_vectors(run, pre, source_items, target_items, timings)
            source_emb = item_table(pre).weight.detach().float().cpu().numpy()[source_items]
            generated = generate(source_vec, source_emb, target_vec, p.top_m, self._index(len(source_items)))
            timings["match_build_seconds"] = generated.build_seconds
            timings["match_search_seconds"] = generated.search_seconds
            timings["match_seconds"] = generated.build_seconds + generated.search_seconds
            self.report.update(index=generated.index_kind, source_items=int(len(source_items)),
                               target_items=int(len(target_items)), top_m=p.top_m)
            self.matches = {"target_items": target_items, "source_items": source_items,
                            "neighbors": generated.neighbors, "weights": generated.weights}
            install_rows(pre, target_items, generated.embeddings)
            if p.id_text:
                text_rows = torch.zeros(dataset.n_items + 1, generated.embeddings.shape[1])
                text_rows[torch.as_tensor(target_items)] = torch.as_tensor(pca_reduce(target_vec, text_rows.shape[1]))
                add_text(pre, text_rows)
        else:
            reinit_rows(pre, target_items, seed=run.seed)

        # 4. deploy / fine-tune (§2.6): one model per target, or one for all of them
        models: dict[int, nn.Module] = {d: pre for d in plan.deploy}
        generated_rows = item_table(pre).weight.detach().cpu()[torch.as_tensor(target_items)]
        groups = [plan.finetune] if p.finetune_together and plan.finetune else [[d] for d in plan.finetune]
        for group in groups:
            if p.mode == "new-encoder":
                model = run.build_encoder()
                install_rows(model, target_items, generated_rows)
                if text_rows is not None:
                    add_text(model, text_rows)
            else:
                model = copy.deepcopy(pre)
            name = "finetune" if p.finetune_together else f"finetune:{names[group[0]]}"
            # a copy of the pre-trained encoder is scored before fine-tuning (epoch 0) and kept if no epoch
            # beats it; a new encoder (mode new-encoder) starts mostly random, with nothing worth keeping
            stage = Stage(name=name, domains=group, validate_on=group, epochs=p.finetune_epochs, lr=p.finetune_lr,
                          score_start=p.mode != "new-encoder")
            seconds = run.train_stage(model, stage).seconds
            timings["finetune_seconds" if p.finetune_together else f"finetune_seconds/{names[group[0]]}"] = seconds
            models.update({d: model for d in group})
        self._pretrained = pre
        if cold is not None:
            self.report["cold_items"] = int(cold.size)
            self.report["cold_metrics"] = self._evaluate_cold(run, models, cold)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.run_dir / "idp.json", json.dumps(self.report, indent=2))
        return models

    def _check_encoders(self, run: "RunContext", pre: nn.Module, plan: Plan, target_items: np.ndarray) -> None:
        """Refuse, before any training, encoders IDP cannot read from or write into.

        The pre-training encoder must have a plain ``item_embedding`` (IDP reads it); under mode
        ``new-encoder`` a probe of the run's encoder (built on a forked RNG, so the run's random
        stream is the one it would be without the probe) must hold the target items' rows at the
        pre-training width, and under ``id_text`` have a plain ``item_embedding`` to add text to.
        """
        p = self.params
        if p.id_text and not has_plain_item_embedding(pre):
            raise ConfigError(self._id_text_error(pre, "the pre-training encoder"))
        width = item_table(pre, "pre-training encoder").embedding_dim
        if p.mode != "new-encoder" or not plan.finetune:
            return
        with torch.random.fork_rng(devices=[]):
            probe = run.build("encoder")  # on the CPU, discarded
        if p.id_text and not has_plain_item_embedding(probe):
            raise ConfigError(self._id_text_error(probe, f"encoder {run.config.encoder.name!r}"))
        try:
            theirs = item_embedding_width(probe, target_items, what=f"encoder {run.config.encoder.name!r}")
        except ValueError as exc:
            raise ConfigError(f"encoder.name: {exc}; IDP writes one generated row per item into every table") from None
        if theirs != width:
            raise ConfigError(
                f"transfer.params.pretrain_encoder: the pre-training encoder's item_embedding is {width}-d but "
                f"encoder {run.config.encoder.name!r} keeps {theirs}-d item embeddings; give both the same width "
                f"({WIDTH_KEYS})"
            )

    @staticmethod
    def _id_text_error(model: nn.Module, what: str) -> str:
        return (f"transfer.params.id_text: the ID+text input adds text vectors to a plain `item_embedding` table, "
                f"and {what} ({type(model).__name__}) has none; set transfer.params.id_text=false")

    def _index(self, n: int):
        p = self.params
        return choose_index(n, p.index, p.index_exact_max, p.index_large, hnsw_m=p.hnsw_m,
                            hnsw_ef_search=p.hnsw_ef_search, ivf_nprobe=p.ivf_nprobe)

    def _matcher_vectors(self, run: "RunContext", pre: nn.Module, source_items: np.ndarray,
                         target_items: np.ndarray, timings: dict) -> tuple[np.ndarray, np.ndarray]:
        """Tune CDIM on the source items and return unit text vectors of the source and target items."""
        from mtrec.text import encode_item_texts, resolve_text_model

        p = self.params
        option = "transfer.params.text_model"
        how = p.matcher_train if p.matcher_train != "auto" else ("full" if run.device.type == "cuda" else "head")
        started = time.perf_counter()
        if how == "full":
            matcher: nn.Module = FullMatcher(resolve_text_model(p.text_model, option), run.dataset.item_text,
                                             p.max_tokens, run.device)
            lr = p.matcher_lr or 3e-5
        else:
            base = encode_item_texts(run, p.text_model, option=option)  # cached per dataset and model
            matcher = HeadMatcher(torch.as_tensor(base), p.dropout).to(run.device)
            lr = p.matcher_lr or 1e-3
        timings["matcher_load_seconds"] = time.perf_counter() - started
        self.report["matcher_train"] = how
        if how != "none" and p.matcher_epochs > 0:
            positives = None
            if p.behavior_loss:
                emb = item_table(pre).weight.detach().float().cpu().numpy()[source_items]
                neighbors = behavior_neighbors(emb, p.behavior_k, self._index(len(source_items)))
                positives = torch.as_tensor(np.where(neighbors >= 0, source_items[np.clip(neighbors, 0, None)], 0))
            started = time.perf_counter()
            stats = fit_matcher(
                matcher, torch.as_tensor(source_items), positives, epochs=p.matcher_epochs,
                batch_size=p.matcher_batch_size, lr=lr, temperature=p.temperature,
                behavior_weight=p.behavior_weight if p.behavior_loss else 0.0,
                positives_per_step=p.behavior_positives_per_step, max_steps=p.matcher_max_steps,
                seed=run.seed, progress=run.progress,
            )
            timings["matcher_fit_seconds"] = time.perf_counter() - started
            self.report["matcher_fit"] = stats
        if isinstance(matcher, HeadMatcher):
            self.matcher_state = {k: v.detach().cpu() for k, v in matcher.linear.state_dict().items()}
        started = time.perf_counter()
        vectors = to_numpy(matcher.encode(torch.as_tensor(np.concatenate([source_items, target_items])),
                                          progress=run.progress))
        timings["matcher_encode_seconds"] = time.perf_counter() - started
        return vectors[: len(source_items)], vectors[len(source_items) :]

    def _evaluate_cold(self, run: "RunContext", models: dict[int, nn.Module], cold: np.ndarray) -> dict:
        """§3.8: metrics on the validation and test examples whose target is a held-out item.

        The models are final here (no selection follows), so scoring the test subset does not leak.
        """
        from mtrec.evaluation.evaluator import evaluate

        ev = run.config.evaluation
        out = {}
        for split in ("valid", "test"):
            examples = run.examples(split)
            keep = np.isin(examples["target"], cold)
            if not keep.any():
                continue
            subset = {k: v[keep] for k, v in examples.items()}
            report = evaluate(run.dataset, models, run.decoder, subset, split=split, ks=ev.ks, protocol=ev.protocol,
                              negatives=ev.negatives, batch_size=ev.batch_size, device=run.device, seed=run.seed,
                              filter_history=ev.filter_history, progress=run.progress, autocast=run.autocast)
            run.log_metrics(report.rows(stage="cold-items"))
            out[split] = {"metrics": report.metrics, "counts": report.counts}
        return out

    # ------------------------------------------------------------------ artifacts
    def save(self, models: dict[int, nn.Module], directory: Path) -> None:
        super().save(models, directory)
        pretrained = self._pretrained
        files = json.loads((directory / "models.json").read_text())
        meta = {
            "id_text": any(isinstance(getattr(m, "item_embedding", None), IdPlusText) for m in models.values()),
            # models that are the pre-training encoder (deployed as is) are rebuilt from pretrain_encoder
            "pretrain_encoder_domains": [d for d, m in models.items() if m is pretrained],
            "files": files,
        }
        atomic_write_text(directory / "transfer.json", json.dumps(meta, indent=2))
        atomic_write_text(directory / "idp.json", json.dumps(self.report, indent=2))
        if self.matcher_state is not None:
            atomic_torch_save(self.matcher_state, directory / "matcher-head.pt")
        if self.matches:
            atomic_torch_save({k: torch.as_tensor(v) for k, v in self.matches.items()}, directory / "matches.pt")

    def load(self, run: "RunContext", directory: Path) -> dict[int, nn.Module]:
        meta_path = directory / "transfer.json"
        meta = read_json(meta_path, "how the models were saved")
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
            raise UserError(f"{meta_path}: expected a mapping with a 'files' mapping (domain -> model file)")
        built: dict[str, nn.Module] = {}
        models: dict[int, nn.Module] = {}
        for d, name in sorted(meta["files"].items(), key=lambda kv: int(kv[0])):
            path = member(directory, name, meta_path)
            if name not in built:
                model = self._build_pretrain(run) if int(d) in meta["pretrain_encoder_domains"] else run.build_encoder()
                if meta["id_text"]:
                    table = item_table(model)
                    add_text(model, torch.zeros_like(table.weight))
                model.load_state_dict(load_tensors(path, run.device))
                built[name] = model.eval()
            models[int(d)] = built[name]
        return models
