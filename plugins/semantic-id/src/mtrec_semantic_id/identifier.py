"""The ``semantic-id`` item identifier: RQ-VAE codes of item text embeddings (GMC, TIGER).

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
import numpy as np
import torch
from pydantic import Field

from mtrec.components import Params
from mtrec.errors import ConfigError

from mtrec_semantic_id.rqvae import RQVAE, TrainConfig, train_rqvae

if TYPE_CHECKING:
    from mtrec.run_context import RunContext

FORMAT_VERSION = 1


class SemanticIdParams(Params):
    levels: int = Field(4, ge=1, description="Codebook levels L (paper: 4).")
    codebook_size: int = Field(256, ge=2, description="Codes per level N (paper: 256).")
    latent_dim: int = Field(32, ge=1, description="RQ-VAE latent dimension d (paper: 32).")
    hidden: list[int] = Field(default_factory=lambda: [512, 256, 128],
                              description="Hidden sizes of the MLP encoder (the decoder mirrors them).")
    beta: float = Field(0.25, ge=0, description="Commitment weight of Eq. 5 (paper: 0.25).")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (paper: 1e-3).")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (paper: silent).")
    batch_size: int = Field(1024, ge=2, description="Items per RQ-VAE step (paper: 1024).")
    epochs: int = Field(100, ge=1, description="Passes over the items (paper: 10k on GPU; CPU default 100).")
    shared_codebooks: bool = Field(
        True, description="One RQ-VAE for all domains (False: one per domain, the ablation).")
    contrastive: bool = Field(True, description="Add the domain-aware contrastive loss (Eq. 6).")
    contrastive_weight: float = Field(1.0, ge=0, description="Weight of Eq. 6 in Eq. 7 (paper: 1).")
    contrastive_temperature: float = Field(1.0, gt=0, description="Divides the inner products of Eq. 6 (paper: 1).")
    contrastive_similarity: Literal["dot", "cosine"] = Field(
        "dot", description="Inner product of Eq. 6 on raw (dot, the paper) or L2-normalised (cosine) z_hat.")
    kmeans_init: bool = Field(True, description="Initialise each level's codebook by k-means on its residuals.")
    kmeans_iters: int = Field(20, ge=1)
    dead_code_steps: int = Field(
        50, ge=0, description="Every this many steps, codes unused since the last check move onto random "
        "current residuals (0: never).")
    standardize: bool = Field(True, description="Z-score each embedding dimension before the RQ-VAE.")
    text_model: str = Field("all-MiniLM-L6-v2", description="Sentence encoder: a registered name or a local folder.")
    text_batch_size: int = Field(64, ge=1)
    collision: Literal["extra-level", "always-extra-level"] = Field(
        "extra-level", description="extra-level: append a disambiguation level when some items of a domain "
        "share all L codes; always-extra-level: append it even when none do (TIGER's layout).")


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
        self.models: list[RQVAE] = []
        self.norm: list[tuple[np.ndarray, np.ndarray]] = []  # per model: (mean, std) used to standardise
        self.stats: dict[str, float] = {}
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
        """Train the RQ-VAE(s) on ``embeddings`` ``[n_items + 1, D]`` (row 0 ignored) and assign tokens."""
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
        groups = [np.arange(1, self.n_items + 1)] if p.shared_codebooks else [
            np.flatnonzero(item_domain == d) for d in range(len(self.domains))
        ]
        codes = np.zeros((self.n_items + 1, p.levels), dtype=np.int64)
        self.models, self.norm, history = [], [], []
        for g, items in enumerate(groups):
            if items.size == 0:
                self.models.append(self._new_model(embeddings.shape[1], seed + g))
                self.norm.append((np.zeros(embeddings.shape[1], np.float32), np.ones(embeddings.shape[1], np.float32)))
                continue
            x_np = embeddings[items]
            mean, std = self._norm_stats(x_np)
            self.norm.append((mean, std))
            x = torch.from_numpy((x_np - mean) / std).to(device)
            dom = torch.from_numpy(item_domain[items]).to(device)
            model = self._new_model(embeddings.shape[1], seed + g).to(device)
            several_domains = np.unique(item_domain[items]).size > 1
            cfg = TrainConfig(
                epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, weight_decay=p.weight_decay,
                # Eq. 6 is identically 0 on a single domain (separate codebooks): skip it there
                contrastive_weight=p.contrastive_weight if p.contrastive and several_domains else 0.0,
                temperature=p.contrastive_temperature, similarity=p.contrastive_similarity,
                kmeans_init=p.kmeans_init, kmeans_iters=p.kmeans_iters, dead_code_steps=p.dead_code_steps,
            )
            bar = None
            if progress:
                from tqdm.auto import tqdm

                label = "rq-vae" if p.shared_codebooks else f"rq-vae:{self.domains[g]}"
                bar = lambda total, label=label: tqdm(total=total, desc=label, unit="epoch")  # noqa: E731
            history.append(train_rqvae(model, x, dom, cfg, generator=generator, progress=bar))
            history[-1]["recon_mse"] = model.reconstruction_error(x)
            codes[items] = model.codes(x).cpu().numpy()
            self.models.append(model.cpu())
        self._assign(codes)
        self._compute_stats(history, time.perf_counter() - started)
        if echo:
            click.echo(self.summary(), err=True)

    def _new_model(self, input_dim: int, seed: int) -> RQVAE:
        p = self.params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return RQVAE(input_dim, list(p.hidden), p.latent_dim, p.levels, p.codebook_size, p.beta)

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
        stats["levels_total"] = int(self.levels_total)
        stats["vocab_size"] = int(self.vocab_size)
        for key in ("recon", "rq", "dcl"):  # last epoch's mean loss terms (mean over models)
            values = [h[key] for h in history if key in h]
            if values:
                stats[f"final_{key}"] = round(float(np.mean(values)), 6)
        if history:
            stats["recon_mse"] = round(float(np.mean([h["recon_mse"] for h in history])), 6)
            stats["dead_code_resets"] = int(sum(h["dead_code_resets"] for h in history))
        stats["fit_seconds"] = round(seconds, 2)
        self.stats = stats

    def metric_rows(self) -> list[dict[str, Any]]:
        """``stats`` as registry metric rows (stage ``identifier``, split ``fit``).

        ``usage/L1`` -> name ``usage``, k 1, domain ``all``; ``collision_rate/Arts`` -> name
        ``collision_rate``, domain ``Arts``; other keys -> domain ``all``.
        """
        rows = []
        for key, value in self.stats.items():
            name, _, suffix = key.partition("/")
            k, domain = None, "all"
            if suffix.startswith("L") and suffix[1:].isdigit():
                k = int(suffix[1:])
            elif suffix:
                domain = suffix
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
        return (
            f"semantic-id: {self.n_items} items, {'shared' if p.shared_codebooks else 'per-domain'} codebooks "
            f"{p.levels}x{p.codebook_size}; usage {usage}; collisions {s.get('collision_rate', 0):.2%} of items "
            f"(extra level needed by {s.get('extra_level_share', 0):.2%}, largest group "
            f"{s.get('max_collision_group', 0)}); {self.levels_total} tokens/item, vocab {self.vocab_size}; "
            f"fit {s.get('fit_seconds', 0):.1f}s"
            + (f" (+ text embeddings {s['embed_seconds']:.1f}s)" if "embed_seconds" in s else "")
        )

    # ------------------------------------------------------------------ the contract
    def _require_fitted(self) -> np.ndarray:
        if self.tokens is None:
            raise RuntimeError("semantic-id: fit() or load() first")
        return self.tokens

    def item_tokens(self) -> torch.Tensor:
        return torch.from_numpy(self._require_fitted().copy())

    def domain_tokens(self, run_or_domain: Any, domain: int | None = None) -> torch.Tensor:
        """``[n_d, L']`` aligned with ``dataset.domain_items[d]``: ``domain_tokens(run, d)`` or ``(d)``."""
        tokens = self._require_fitted()
        d = run_or_domain if domain is None else domain
        items = np.flatnonzero(self.item_domain == int(d))
        return torch.from_numpy(tokens[items].copy())

    def encode(self, embeddings: np.ndarray, domain: int = 0) -> np.ndarray:
        """Codes ``[n, L]`` of new embeddings with the fitted RQ-VAE (``domain`` picks the per-domain one)."""
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
        atomic_torch_save(
            {"models": [m.state_dict() for m in self.models],
             "norm": [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in self.norm]},
            directory / "rqvae.pt",
        )
        _atomic_npz(directory / "codes.npz", codes=self.codes, tokens=self.tokens, item_domain=self.item_domain)
        meta = {
            "format": FORMAT_VERSION, "identifier": "semantic-id", "n_items": self.n_items,
            "domains": self.domains, "vocab_size": self.vocab_size, "levels_total": self.levels_total,
            "params": self.params.model_dump(mode="json"), "stats": self.stats,
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
        self._rank = disambiguate(self.codes[1:], self.item_domain[1:])
        state = torch.load(directory / "rqvae.pt", map_location="cpu", weights_only=True)
        self.models, self.norm = [], []
        for sd, (mean, std) in zip(state["models"], state["norm"]):
            input_dim = sd["encoder.0.weight"].shape[1]
            model = self._new_model(input_dim, 0)
            model.load_state_dict(sd)
            model.eval()
            self.models.append(model)
            self.norm.append((mean.numpy(), std.numpy()))


def _atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
