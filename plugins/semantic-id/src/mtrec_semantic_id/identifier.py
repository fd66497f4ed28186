"""The ``semantic-id`` item identifier: RQ-VAE codes of item text embeddings (GMC, TIGER).

``method: residual-kmeans`` replaces the RQ-VAE by training-free residual k-means.  Every fit ends
with a quality report (``quality.py``): codebook usage, collisions, neighbour agreement, and a loud
warning when the identifier is degenerate.

Token layout (``L`` = ``levels``, ``N`` = ``codebook_size``):

* shared codebooks: level ``l`` code ``c`` -> token ``l * N + c``  (``0 <= token < L * N``);
* separate codebooks (one RQ-VAE per domain): domain ``d`` level ``l`` code ``c`` ->
  ``(d * L + l) * N + c``, so no token is shared between domains;
* the disambiguation level (see :func:`disambiguate`) uses the range after those:
  ``base + k`` with ``k`` the item's rank among the items of its domain that share its ``L`` codes.

``item_tokens()`` is ``[n_items + 1, L']`` (``L' = L`` or ``L + 1``), row 0 zeros (padding, never
decoded); every row is unique within its domain.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator

from mtrec.components import Params
from mtrec.errors import ConfigError

from mtrec_semantic_id.quality import NEIGHBOURS, degeneracy, neighbour_agreement
from mtrec_semantic_id.residual_kmeans import ResidualKMeans
from mtrec_semantic_id.rqvae import RQVAE, TrainConfig, train_rqvae

if TYPE_CHECKING:
    from mtrec.run_context import RunContext

FORMAT_VERSION = 1

Quantizer = RQVAE | ResidualKMeans


class DegenerateIdentifierWarning(UserWarning):
    """The fitted identifier uses too few codes or lets too many items collide (see ``quality.py``)."""


# The RQ-VAE budget when neither ``steps`` nor ``epochs`` is given (see the README, "Budget").
DEFAULT_STEPS = 3000


class SemanticIdParams(Params):
    method: Literal["rqvae", "residual-kmeans"] = Field(
        "rqvae", description="rqvae: the trained RQ-VAE (the paper); residual-kmeans: training-free PCA to "
        "latent_dim then k-means on each level's residuals (no encoder, no contrastive loss).")
    levels: int = Field(4, ge=1, description="Codebook levels L (paper: 4).")
    codebook_size: int = Field(256, ge=2, description="Codes per level N (paper: 256).")
    latent_dim: int = Field(32, ge=1, description="RQ-VAE latent dimension d (paper: 32); the PCA size of "
                            "residual-kmeans.")
    hidden: list[int] = Field(default_factory=lambda: [512, 256, 128],
                              description="Hidden sizes of the MLP encoder (the decoder mirrors them).")
    beta: float = Field(0.25, ge=0, description="Commitment weight of Eq. 5 (paper: 0.25).")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (paper: 1e-3).")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (paper: silent).")
    batch_size: int = Field(1024, ge=2, description="Items per RQ-VAE step (paper: 1024); a smaller catalogue "
                            "uses all its items per step.")
    steps: int | None = Field(
        None, ge=1, description=f"RQ-VAE budget in optimiser steps, the k-means warm-up included; wins over "
        f"epochs. Unset: {DEFAULT_STEPS} steps, unless epochs is set.")
    epochs: int | None = Field(
        None, ge=1, description="Compatibility: a budget in passes over the items, used only when steps is "
        "unset (a small catalogue then gets very few steps).")
    kmeans_warmup_steps: int = Field(
        200, ge=0, description="Steps that train the encoder/decoder on reconstruction alone before the "
        "codebooks are k-means initialised on the encoder's output (0: initialise on the untrained encoder).")
    shared_codebooks: bool = Field(
        True, description="One RQ-VAE for all domains (False: one per domain, the ablation).")
    contrastive: bool = Field(True, description="Add the domain-aware contrastive loss (Eq. 6).")
    # Eq. 6's defaults depart from the paper's implicit weight 1 / raw dot / temperature 1, which on
    # MiniLM embeddings costs a quarter of the within-domain neighbour agreement (README, "Choices").
    contrastive_weight: float = Field(0.1, ge=0, description="Weight of Eq. 6 in Eq. 7 (paper: 1, implicitly).")
    contrastive_temperature: float = Field(0.2, gt=0, description="Divides the similarities of Eq. 6 "
                                           "(paper: none, i.e. 1).")
    contrastive_similarity: Literal["dot", "cosine"] = Field(
        "cosine", description="Similarity of Eq. 6: inner product of L2-normalised z_hat (cosine) or of raw "
        "z_hat (dot, the paper's as written).")
    kmeans_init: bool = Field(True, description="Initialise each level's codebook by k-means on its residuals.")
    kmeans_iters: int = Field(20, ge=1, description="Lloyd iterations of each k-means (initialisation and "
                              "residual-kmeans).")
    dead_code_steps: int = Field(
        50, ge=0, description="Codes unchosen for max(this, two passes over the items) steps move onto random "
        "current residuals (0: never).")
    standardize: bool = Field(True, description="Z-score each embedding dimension before the RQ-VAE.")
    text_model: str = Field("all-MiniLM-L6-v2", description="Sentence encoder: a registered name or a local folder.")
    text_batch_size: int = Field(64, ge=1)
    collision: Literal["extra-level", "always-extra-level"] = Field(
        "extra-level", description="extra-level: append a disambiguation level when some items of a domain "
        "share all L codes; always-extra-level: append it even when none do (TIGER's layout).")

    @field_validator("kmeans_warmup_steps")
    @classmethod
    def _warmup_inside_budget(cls, value: int, info: ValidationInfo) -> int:
        steps = info.data.get("steps")
        if steps is not None and value >= steps:
            raise ValueError(f"must be below steps ({steps}): the warm-up is part of the step budget")
        return value

    def budget(self) -> tuple[int | None, int | None]:
        """(steps, epochs) handed to the trainer: steps if set, else epochs if set, else DEFAULT_STEPS."""
        if self.steps is not None:
            return self.steps, None
        if self.epochs is not None:
            return None, self.epochs
        return DEFAULT_STEPS, None


# --------------------------------------------------------------------------- pure helpers


def disambiguate(codes: np.ndarray, item_domain: np.ndarray) -> np.ndarray:
    """``k`` per item: its rank (by item id) among the items of its domain with the same codes.

    ``codes`` is ``[n, L]`` and ``item_domain`` ``[n]`` for real items only (no padding row).
    Items with a code tuple of their own get 0.
    """
    n = codes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = np.concatenate([item_domain.reshape(-1, 1), codes], axis=1)
    # np.lexsort sorts by its last key first: domain, then codes, ties broken by item index
    order = np.lexsort((np.arange(n), *[key[:, j] for j in range(key.shape[1] - 1, -1, -1)]))
    sorted_key = key[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = np.any(sorted_key[1:] != sorted_key[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    rank = np.arange(n) - group_start
    out = np.empty(n, dtype=np.int64)
    out[order] = rank
    return out


def group_sizes(codes: np.ndarray, item_domain: np.ndarray) -> np.ndarray:
    """For each item, how many items of its domain share its full code tuple (itself included)."""
    key = np.concatenate([item_domain.reshape(-1, 1), codes], axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)]


def standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (mean, std) for z-scoring ``x``; (near-)constant dimensions keep std 1.

    Sentence embeddings can have dimensions that are constant over a catalogue (MiniLM has three on
    the bundled dataset); dividing by their ~0 spread would only amplify rounding noise.
    """
    x64 = np.asarray(x, dtype=np.float64)
    mean, std = x64.mean(0), x64.std(0)
    floor = 1e-3 * float(std.max()) if std.size else 0.0
    std = np.where(std > max(floor, 1e-12), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def domain_purity(first_codes: np.ndarray, item_domain: np.ndarray) -> float:
    """Share of items whose level-1 code's majority domain is their own (1: no code mixes domains).

    How far shared codebooks keep domains apart (GMC §5.4.1), what Eq. 6 pushes towards.
    """
    if first_codes.size == 0:
        return 0.0
    pairs, counts = np.unique(np.stack([first_codes, item_domain], 1), axis=0, return_counts=True)
    best = {}
    for (code, _), count in zip(pairs.tolist(), counts.tolist()):
        best[code] = max(best.get(code, 0), count)
    return float(sum(best.values())) / first_codes.size


def level_stats(codes: np.ndarray, codebook_size: int) -> tuple[float, float]:
    """(distinct codes used / N, perplexity exp(H)) of one level's codes."""
    if codes.size == 0:
        return 0.0, 0.0
    counts = np.bincount(codes, minlength=codebook_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float((counts > 0).sum() / codebook_size), float(math.exp(-(p * np.log(p)).sum()))


# --------------------------------------------------------------------------- the identifier


class SemanticIdIdentifier:
    """RQ-VAE semantic IDs with domain-aware contrastive training and collision disambiguation."""

    def __init__(self, params: SemanticIdParams | None = None, run: "RunContext | None" = None) -> None:
        self.params = params or SemanticIdParams()
        self.n_items = run.dataset.n_items if run is not None else None
        self.domains: list[str] = list(run.dataset.domains) if run is not None else []
        self.item_domain: np.ndarray | None = (
            np.asarray(run.dataset.item_domain, dtype=np.int64) if run is not None else None
        )
        self.codes: np.ndarray | None = None  # [n_items + 1, L] raw codes (row 0 zeros)
        self.tokens: np.ndarray | None = None  # [n_items + 1, L'] token ids
        self.models: list[Quantizer] = []
        self.norm: list[tuple[np.ndarray, np.ndarray]] = []  # per model: (mean, std) used to standardise
        self.stats: dict[str, float] = {}
        self.quality_warnings: list[str] = []
        self.vocab_size = 0
        self.levels_total = 0

    # ------------------------------------------------------------------ token layout
    @property
    def code_vocab(self) -> int:
        """Tokens used by the L code levels (the disambiguation level starts here)."""
        p = self.params
        groups = 1 if p.shared_codebooks else max(len(self.domains), 1)
        return groups * p.levels * p.codebook_size

    def level_ranges(self) -> list[tuple[int, int]]:
        """``[start, end)`` of the token ids each position may hold (union over domains)."""
        p = self.params
        if p.shared_codebooks:
            ranges = [(l * p.codebook_size, (l + 1) * p.codebook_size) for l in range(p.levels)]
        else:
            ranges = [(l * p.codebook_size, self.code_vocab) for l in range(p.levels)]  # loose bound
        if self.levels_total > p.levels:
            ranges.append((self.code_vocab, self.vocab_size))
        return ranges

    # ------------------------------------------------------------------ fitting
    def fit(self, run: "RunContext") -> None:
        from mtrec.text import encode_item_texts

        ds = run.dataset
        self.n_items = ds.n_items
        self.domains = list(ds.domains)
        started = time.perf_counter()
        emb = encode_item_texts(run, self.params.text_model, batch_size=self.params.text_batch_size,
                                option="identifier.params.text_model")
        embed_seconds = time.perf_counter() - started
        self.fit_embeddings(emb, ds.item_domain, seed=run.seed, device=run.device, progress=run.progress,
                            echo=False)
        # Text embedding is its own stage in GMC's cost breakdown (cached runs show ~0).
        self.stats["embed_seconds"] = round(embed_seconds, 2)
        click.echo(self.summary(), err=True)

    def fit_embeddings(self, embeddings: np.ndarray, item_domain: np.ndarray, *, seed: int = 0,
                       device: torch.device | str = "cpu", progress: bool = False, echo: bool = True) -> None:
        """Fit the quantiser(s) on ``embeddings`` ``[n_items + 1, D]`` (row 0 ignored) and assign tokens.

        Afterwards ``stats`` holds the quality report; a degenerate identifier is announced (a
        :class:`DegenerateIdentifierWarning` and a ``warning:`` line) and recorded as ``degenerate: 1``.
        """
        p = self.params
        started = time.perf_counter()
        embeddings = np.asarray(embeddings, dtype=np.float32)
        item_domain = np.asarray(item_domain, dtype=np.int64)
        if embeddings.shape[0] != item_domain.shape[0]:
            raise ValueError("embeddings and item_domain must both have n_items + 1 rows")
        self.n_items = embeddings.shape[0] - 1
        n_domains = int(item_domain[1:].max()) + 1 if self.n_items else 0
        if not self.domains:
            self.domains = [f"domain{d}" for d in range(n_domains)]
        self.item_domain = item_domain.copy()
        device = torch.device(device)
        generator = torch.Generator().manual_seed(int(seed))
        if p.method == "rqvae" and p.steps is not None and p.epochs is not None:
            click.echo(f"semantic-id: identifier.params.epochs ({p.epochs}) is ignored: steps ({p.steps}) "
                       "sets the RQ-VAE budget", err=True)
        groups = [np.arange(1, self.n_items + 1)] if p.shared_codebooks else [
            np.flatnonzero(item_domain == d) for d in range(len(self.domains))
        ]
        codes = np.zeros((self.n_items + 1, p.levels), dtype=np.int64)
        self.models, self.norm, history = [], [], []
        for g, items in enumerate(groups):
            if items.size == 0:
                self.models.append(self._empty_model(embeddings.shape[1], seed + g))
                self.norm.append((np.zeros(embeddings.shape[1], np.float32), np.ones(embeddings.shape[1], np.float32)))
                continue
            x_np = embeddings[items]
            mean, std = self._norm_stats(x_np)
            self.norm.append((mean, std))
            x = torch.from_numpy((x_np - mean) / std).to(device)
            label = "" if p.shared_codebooks else self.domains[g]
            if p.method == "residual-kmeans":
                model: Quantizer = ResidualKMeans.fit(x, dim=p.latent_dim, levels=p.levels,
                                                      codebook_size=p.codebook_size, iters=p.kmeans_iters,
                                                      generator=generator)
                history.append({})
            else:
                dom = torch.from_numpy(item_domain[items]).to(device)
                model, losses = self._fit_rqvae(x, dom, seed + g, generator, progress, label)
                history.append(losses)
            codes[items] = model.codes(x).cpu().numpy()
            self.models.append(model.cpu())
        self._assign(codes)
        self._compute_stats(history, time.perf_counter() - started)
        self._quality(embeddings, seed)
        self.stats["fit_seconds"] = round(time.perf_counter() - started, 2)
        if echo:
            click.echo(self.summary(), err=True)

    def _fit_rqvae(self, x: torch.Tensor, dom: torch.Tensor, seed: int, generator: torch.Generator,
                   progress: bool, label: str) -> tuple[RQVAE, dict[str, float]]:
        p = self.params
        steps, epochs = p.budget()
        model = self._new_model(x.shape[1], seed).to(x.device)
        several_domains = torch.unique(dom).numel() > 1
        cfg = TrainConfig(
            steps=steps, epochs=epochs or 1, batch_size=p.batch_size, lr=p.lr, weight_decay=p.weight_decay,
            # Eq. 6 is identically 0 on a single domain (separate codebooks): skip it there
            contrastive_weight=p.contrastive_weight if p.contrastive and several_domains else 0.0,
            temperature=p.contrastive_temperature, similarity=p.contrastive_similarity,
            kmeans_init=p.kmeans_init, kmeans_iters=p.kmeans_iters, dead_code_steps=p.dead_code_steps,
            kmeans_warmup_steps=p.kmeans_warmup_steps,
        )
        total = cfg.total_steps(x.shape[0])
        if epochs is not None and cfg.kmeans_warmup_steps > total // 2:
            # An epoch budget (steps is validated against the warm-up): keep old configs working, loudly.
            cfg.kmeans_warmup_steps = total // 10
            click.echo(f"semantic-id{':' + label if label else ''}: epochs={epochs} give only {total} RQ-VAE "
                       f"steps on {x.shape[0]} items, so the k-means warm-up is cut to {cfg.kmeans_warmup_steps} "
                       "steps; set identifier.params.steps instead", err=True)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            desc = f"rq-vae:{label}" if label else "rq-vae"
            bar = lambda total, desc=desc: tqdm(total=total, desc=desc, unit="step")  # noqa: E731
        losses = train_rqvae(model, x, dom, cfg, generator=generator, progress=bar)
        losses["recon_mse"] = model.reconstruction_error(x)
        return model, losses

    def _new_model(self, input_dim: int, seed: int) -> RQVAE:
        p = self.params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return RQVAE(input_dim, list(p.hidden), p.latent_dim, p.levels, p.codebook_size, p.beta)

    def _empty_model(self, input_dim: int, seed: int) -> "Quantizer":
        """The quantiser of a domain without items (separate codebooks): never used, but saved."""
        p = self.params
        if p.method == "residual-kmeans":
            dim = min(p.latent_dim, input_dim)
            return ResidualKMeans(torch.zeros(input_dim), torch.eye(input_dim)[:, :dim],
                                  torch.zeros(p.levels, p.codebook_size, dim))
        return self._new_model(input_dim, seed)

    def _norm_stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.params.standardize:
            return np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
        return standardization(x)

    def _assign(self, codes: np.ndarray) -> None:
        """Codes -> tokens, with the disambiguation level when needed (see the module docstring)."""
        p = self.params
        self.codes = codes
        n = self.n_items
        dom = self.item_domain[1:]
        rank = disambiguate(codes[1:], dom)
        need_extra = p.collision == "always-extra-level" or (n > 0 and rank.max() > 0)
        levels = p.levels + (1 if need_extra else 0)
        tokens = np.zeros((n + 1, levels), dtype=np.int64)
        offsets = np.arange(p.levels) * p.codebook_size
        body = codes[1:] + offsets
        if not p.shared_codebooks:
            body = body + (dom * p.levels * p.codebook_size).reshape(-1, 1)
        tokens[1:, : p.levels] = body
        extra_size = 0
        if need_extra:
            tokens[1:, p.levels] = self.code_vocab + rank
            extra_size = int(rank.max()) + 1 if n else 1
        self.tokens = tokens
        self.levels_total = levels
        self.vocab_size = self.code_vocab + extra_size
        self._rank = rank

    def _compute_stats(self, history: list[dict[str, float]], seconds: float) -> None:
        p = self.params
        codes = self.codes[1:]
        dom = self.item_domain[1:]
        n = max(self.n_items, 1)
        stats: dict[str, float] = {}
        for level in range(p.levels):
            if p.shared_codebooks:
                usage, ppl = level_stats(codes[:, level], p.codebook_size)
            else:  # mean over the per-domain codebooks
                pairs = [level_stats(codes[dom == d, level], p.codebook_size) for d in range(len(self.domains))
                         if (dom == d).any()]
                usage = float(np.mean([u for u, _ in pairs])) if pairs else 0.0
                ppl = float(np.mean([q for _, q in pairs])) if pairs else 0.0
            stats[f"usage/L{level + 1}"] = round(usage, 4)
            stats[f"perplexity/L{level + 1}"] = round(ppl, 2)
        sizes = group_sizes(codes, dom)
        stats["collision_rate"] = round(float((sizes > 1).sum()) / n, 4)
        stats["extra_level_share"] = round(float((self._rank > 0).sum()) / n, 4)
        stats["max_collision_group"] = int(sizes.max()) if sizes.size else 0
        for d, name in enumerate(self.domains):
            mask = dom == d
            if mask.any():
                stats[f"collision_rate/{name}"] = round(float((sizes[mask] > 1).mean()), 4)
        if p.shared_codebooks and self.n_items:
            _, cross_counts = np.unique(codes, axis=0, return_counts=True)
            stats["unique_codes_all_domains"] = round(float(len(cross_counts)) / n, 4)
            if len(self.domains) > 1:
                stats["domain_purity/L1"] = round(domain_purity(codes[:, 0], dom), 4)
        stats["levels_total"] = int(self.levels_total)
        stats["vocab_size"] = int(self.vocab_size)
        for key in ("recon", "rq", "dcl"):  # last epoch's mean loss terms (mean over models)
            values = [h[key] for h in history if key in h]
            if values:
                stats[f"final_{key}"] = round(float(np.mean(values)), 6)
        trained = [h for h in history if "recon_mse" in h]  # RQ-VAE fits (residual-kmeans trains nothing)
        if trained:
            stats["recon_mse"] = round(float(np.mean([h["recon_mse"] for h in trained])), 6)
            stats["dead_code_resets"] = int(sum(h["dead_code_resets"] for h in trained))
            stats["rqvae_steps"] = int(sum(h["steps"] for h in trained))
        stats["fit_seconds"] = round(seconds, 2)
        self.stats = stats

    def _quality(self, embeddings: np.ndarray, seed: int) -> None:
        """Neighbour agreement and the degeneracy check (see ``quality.py``), into ``stats``."""
        p = self.params
        dom = self.item_domain
        overall, per_domain, chance = neighbour_agreement(embeddings, dom, self.codes[:, 0], seed=seed)
        self.stats["neighbour_agreement/L1"] = round(overall, 4)
        self.stats["neighbour_agreement_chance/L1"] = round(chance, 4)
        for d, value in per_domain.items():
            self.stats[f"neighbour_agreement/L1/{self.domains[d]}"] = round(value, 4)
        if p.shared_codebooks:
            groups = [("", self.n_items, *level_stats(self.codes[1:, 0], p.codebook_size))]
        else:
            groups = [(name, int((dom == d).sum()), *level_stats(self.codes[dom == d, 0], p.codebook_size))
                      for d, name in enumerate(self.domains) if (dom == d).any()]
        self.quality_warnings = degeneracy(
            groups, codebook_size=p.codebook_size, levels=p.levels, n_items=self.n_items,
            collision_rate=self.stats["collision_rate"], max_group=self.stats["max_collision_group"],
        )
        self.stats["degenerate"] = 1.0 if self.quality_warnings else 0.0
        if self.quality_warnings:
            message = f"semantic-id identifier is degenerate: {'; '.join(self.quality_warnings)} - {self._remedy()}"
            click.echo(f"warning: {message}", err=True)
            warnings.warn(message, DegenerateIdentifierWarning, stacklevel=3)

    def _remedy(self) -> str:
        p = self.params
        if p.method == "residual-kmeans":
            return "lower identifier.params.codebook_size or raise identifier.params.levels"
        steps = int(self.stats.get("rqvae_steps", 0))
        return (f"raise identifier.params.steps (this fit took {steps} RQ-VAE steps), or use "
                "identifier.params.method=residual-kmeans")

    def metric_rows(self) -> list[dict[str, Any]]:
        """``stats`` as registry metric rows (stage ``identifier``, split ``fit``).

        The key's first part is the name; a later part ``L<k>`` is the level ``k``, any other part the
        domain: ``usage/L1`` -> (usage, k 1, all), ``collision_rate/Arts`` -> (collision_rate, Arts),
        ``neighbour_agreement/L1/Arts`` -> (neighbour_agreement, k 1, Arts).
        """
        rows = []
        for key, value in self.stats.items():
            name, *parts = key.split("/")
            k, domain = None, "all"
            for part in parts:
                if part.startswith("L") and part[1:].isdigit():
                    k = int(part[1:])
                else:
                    domain = part
            rows.append({"stage": "identifier", "split": "fit", "domain": domain, "name": name, "k": k,
                         "value": float(value)})
        return rows

    def summary(self) -> str:
        s = self.stats
        p = self.params
        usage = " ".join(
            f"L{l + 1}={s.get(f'usage/L{l + 1}', 0):.1%}/ppl {s.get(f'perplexity/L{l + 1}', 0):.0f}"
            for l in range(p.levels)
        )
        how = "residual k-means" if p.method == "residual-kmeans" else f"RQ-VAE {s.get('rqvae_steps', 0)} steps"
        return (
            ("DEGENERATE " if s.get("degenerate") else "")
            + f"semantic-id: {self.n_items} items, {'shared' if p.shared_codebooks else 'per-domain'} codebooks "
            f"{p.levels}x{p.codebook_size} ({how}); usage {usage}; "
            f"collisions {s.get('collision_rate', 0):.2%} of items "
            f"(extra level needed by {s.get('extra_level_share', 0):.2%}, largest group "
            f"{s.get('max_collision_group', 0)}); {self.levels_total} tokens/item, vocab {self.vocab_size}; "
            f"neighbour agreement@{NEIGHBOURS} {s.get('neighbour_agreement/L1', 0):.3f} "
            f"(chance {s.get('neighbour_agreement_chance/L1', 0):.3f}); fit {s.get('fit_seconds', 0):.1f}s"
            + (f" (+ text embeddings {s['embed_seconds']:.1f}s)" if "embed_seconds" in s else "")
        )

    # ------------------------------------------------------------------ the contract
    def _require_fitted(self) -> np.ndarray:
        if self.tokens is None:
            raise RuntimeError("semantic-id: fit() or load() first")
        return self.tokens

    def item_tokens(self) -> torch.Tensor:
        return torch.from_numpy(self._require_fitted().copy())

    def domain_tokens(self, run: "RunContext", domain: int) -> torch.Tensor:
        """``[n_d, L']`` aligned with ``run.dataset.domain_items[domain]`` (the ``trie`` contract)."""
        tokens = self._require_fitted()
        items = np.flatnonzero(self.item_domain == int(domain))
        return torch.from_numpy(tokens[items].copy())

    def encode(self, embeddings: np.ndarray, domain: int = 0) -> np.ndarray:
        """Codes ``[n, L]`` of new embeddings with the fitted quantiser (``domain`` picks the per-domain one)."""
        g = 0 if self.params.shared_codebooks else int(domain)
        mean, std = self.norm[g]
        x = torch.from_numpy((np.asarray(embeddings, np.float32) - mean) / std)
        return self.models[g].codes(x).numpy()

    # ------------------------------------------------------------------ artifacts
    def save(self, directory: Path) -> None:
        from mtrec.training.checkpoint import atomic_torch_save, atomic_write_text

        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # Tensors only, loaded back with weights_only=True (no pickle).
        atomic_torch_save(
            {"models": [m.state_dict() for m in self.models],
             "norm": [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in self.norm]},
            directory / self._weights_name(),
        )
        _atomic_npz(directory / "codes.npz", codes=self.codes, tokens=self.tokens, item_domain=self.item_domain)
        meta = {
            "format": FORMAT_VERSION, "identifier": "semantic-id", "n_items": self.n_items,
            "domains": self.domains, "vocab_size": self.vocab_size, "levels_total": self.levels_total,
            "params": self.params.model_dump(mode="json"), "stats": self.stats,
            "quality_warnings": self.quality_warnings,
        }
        atomic_write_text(directory / "semantic_id.json", json.dumps(meta, indent=2))

    def load(self, directory: Path) -> None:
        directory = Path(directory)
        meta_path = directory / "semantic_id.json"
        if not meta_path.is_file():
            raise ConfigError(f"identifier.from_run: {directory} holds no semantic-id identifier (semantic_id.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if self.n_items is not None and meta["n_items"] != self.n_items:
            raise ConfigError(
                f"identifier.from_run: the saved semantic-id identifier has {meta['n_items']} items, "
                f"this dataset has {self.n_items}"
            )
        if self.domains and list(meta["domains"]) != self.domains:
            raise ConfigError(
                f"identifier.from_run: the saved identifier's domains {meta['domains']} differ from this "
                f"dataset's {self.domains}"
            )
        with np.load(directory / "codes.npz") as arrays:
            codes = arrays["codes"].astype(np.int64)
            tokens = arrays["tokens"].astype(np.int64)
            item_domain = arrays["item_domain"].astype(np.int64)
        if tokens.shape[0] != meta["n_items"] + 1 or codes.shape[0] != tokens.shape[0]:
            raise ConfigError(f"identifier.from_run: {directory / 'codes.npz'} does not match semantic_id.json")
        if self.item_domain is not None and not np.array_equal(item_domain, self.item_domain):
            raise ConfigError(
                "identifier.from_run: the saved identifier assigns items to other domains than this dataset"
            )
        saved = SemanticIdParams.model_validate(meta["params"])
        if saved != self.params:
            click.echo("semantic-id: using the saved identifier's params (they differ from this run's)", err=True)
        self.params = saved
        self.n_items, self.domains = meta["n_items"], list(meta["domains"])
        self.codes, self.tokens, self.item_domain = codes, tokens, item_domain
        self.vocab_size, self.levels_total = int(meta["vocab_size"]), int(meta["levels_total"])
        self.stats = dict(meta.get("stats", {}))
        self.quality_warnings = list(meta.get("quality_warnings", []))
        self._rank = disambiguate(self.codes[1:], self.item_domain[1:])
        state = torch.load(directory / self._weights_name(), map_location="cpu", weights_only=True)
        self.models, self.norm = [], []
        for sd, (mean, std) in zip(state["models"], state["norm"]):
            self.models.append(self._model_from_state(sd))
            self.norm.append((mean.numpy(), std.numpy()))

    def _weights_name(self) -> str:
        return "residual_kmeans.pt" if self.params.method == "residual-kmeans" else "rqvae.pt"

    def _model_from_state(self, sd: dict[str, torch.Tensor]) -> Quantizer:
        if self.params.method == "residual-kmeans":
            return ResidualKMeans.from_state_dict(sd)
        model = self._new_model(sd["encoder.0.weight"].shape[1], 0)
        model.load_state_dict(sd)
        model.eval()
        return model


def _atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    from mtrec.files import atomic_open

    with atomic_open(path, "wb", suffix=".npz") as fh:
        np.savez(fh, **arrays)
