"""The ``textual-id`` identifier: IDGenRec's textual item IDs (papers/idgenrec.md §2.2-2.3).

``fit`` builds the word-piece vocabulary, builds the ID generator (a T5 from config), warm-starts it
(:mod:`mtrec_textual_id.warmstart`) and assigns every item of every domain a unique ID with
Algorithm 1 (:mod:`mtrec_textual_id.diverse`; one ID set for the whole dataset, as the paper's
"Fusion" corpus).  ``regenerate`` re-runs Algorithm 1 with the current generator (between rounds of
alternate training) and bumps ``version`` so decoders rebuild their tries.  ``write_user_ids``:
IDGenRec's optional user IDs, written by the same generator from the text of a history's items
(used by ``idgenrec-seq2seq`` with ``encoder.params.user_ids``).

Token layout: identifier tokens are compact vocabulary ids (``0`` = ``[END]``); ``item_tokens()``
is ``[n_items + 1, L]`` with ``L = max length range end``: an ID's pieces, then ``[END]`` up to ``L``
(every row holds at least one ``[END]``; row 0 is padding).  The vocabulary also covers the
prompt templates, so the recommender reads prompts and IDs in the same token space.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
import numpy as np
import torch
from pydantic import Field, model_validator

from mtrec.components import Params
from mtrec.errors import ConfigError

from mtrec_textual_id.diverse import assign_unique_ids
from mtrec_textual_id.generator import GeneratorParams, IdGenerator
from mtrec_textual_id.templates import TEMPLATES
from mtrec_textual_id.vocab import DIGITS, END, UNK, PieceVocab, load_tokenizer, tokenize_many
from mtrec_textual_id.warmstart import train_supervised, warm_targets

if TYPE_CHECKING:
    from mtrec.run_context import RunContext

FORMAT_VERSION = 1


class TextualIdParams(Params):
    text_model: str = Field("all-MiniLM-L6-v2", description="Whose word-piece tokenizer gives the vocabulary.")
    max_text_tokens: int = Field(64, ge=4, description="Item text pieces the generator reads (the rest is cut).")
    max_pieces: int | None = Field(
        None, ge=16, description="Keep only the pieces found in the most item texts (None: every piece seen).")
    generator: GeneratorParams = Field(default_factory=GeneratorParams)
    copy_only: bool = Field(True, description="IDs hold only word pieces of the item's own text (see the README).")
    max_copy_tokens: int = Field(128, ge=1, description="Text pieces an ID may draw from (copy_only).")
    warm_start: Literal["tfidf", "none"] = Field(
        "tfidf", description="tfidf: first train the generator to write each item's top TF-IDF words.")
    warm_words: int = Field(3, ge=1, description="Salient words per warm-start target.")
    warm_epochs: int = Field(3, ge=1)
    warm_lr: float = Field(1e-3, gt=0)
    warm_batch_size: int = Field(128, ge=1)
    warm_max_items: int | None = Field(None, ge=1, description="Items per warm-start epoch (a fresh sample each epoch).")
    groups: int = Field(10, ge=1, description="k: DBS groups, i.e. candidate IDs per attempt (paper: 10).")
    max_penalty: int = Field(10, ge=1, description="Largest diversity penalty before longer IDs (paper: 10).")
    length_ranges: list[tuple[int, int]] = Field(
        default_factory=lambda: [(1, 6), (6, 10)],
        description="ID token-length ranges [min, max), tried in order (paper: [1,10) then [10,20)).")
    generate_batch_size: int = Field(2048, ge=1, description="Decoding rows (items x groups) per generation batch.")

    @model_validator(mode="after")
    def _ranges(self) -> "TextualIdParams":
        if not self.length_ranges:
            raise ValueError("length_ranges: give at least one [min, max) range")
        for lo, hi in self.length_ranges:
            if not 1 <= lo < hi:
                raise ValueError(f"length_ranges: [{lo}, {hi}) must satisfy 1 <= min < max")
        return self


class TextualIdIdentifier:
    """Textual IDs written by a trainable generator; see the module docstring."""

    def __init__(self, params: TextualIdParams | None = None, run: "RunContext | None" = None) -> None:
        self.params = params or TextualIdParams()
        self.version = 0
        self.vocab: PieceVocab | None = None
        self.generator: IdGenerator | None = None
        self.text: torch.Tensor | None = None  # [n_items + 1, S] compact ids of each item's text
        self.text_mask: torch.Tensor | None = None
        self.copy: torch.Tensor | None = None  # [n_items + 1, A] pieces an item's ID may use (copy_only)
        self.tokens: np.ndarray | None = None  # [n_items + 1, L]
        self.item_domain: np.ndarray | None = None
        self.stats: dict[str, float] = {}
        self.history: list[dict[str, float]] = []  # one row per (re)generation
        self.device = torch.device("cpu")
        self._run = run
        self._common: tuple[torch.Tensor, torch.Tensor] | None = None  # (text, its common pieces)

    # ------------------------------------------------------------------ sizes
    @property
    def code_length(self) -> int:
        return max(hi for _, hi in self.params.length_ranges)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) if self.vocab is not None else 0

    # ------------------------------------------------------------------ fitting
    def _prepare(self, run: "RunContext") -> None:
        p = self.params
        ds = run.dataset
        self.device = run.device
        self.item_domain = np.asarray(ds.item_domain, dtype=np.int64)
        tokenizer = load_tokenizer(p.text_model)
        tokenized = tokenize_many(tokenizer, list(ds.item_text[1:]))
        if self.vocab is None:
            self.vocab = PieceVocab.from_pieces(tokenizer, tokenized, always=TEMPLATES, max_pieces=p.max_pieces)
        else:
            self.vocab.tokenizer = tokenizer
        encoded = self.vocab.lookup(tokenized, max(p.max_text_tokens, p.max_copy_tokens))
        text = torch.zeros(ds.n_items + 1, p.max_text_tokens, dtype=torch.long)
        copy = torch.zeros(ds.n_items + 1, p.max_copy_tokens, dtype=torch.long)  # 0 = [END], always allowed
        for i, ids in enumerate(encoded, start=1):
            ids = ids or [UNK]
            text[i, : min(len(ids), p.max_text_tokens)] = torch.as_tensor(ids[: p.max_text_tokens])
            copy[i, : min(len(ids), p.max_copy_tokens)] = torch.as_tensor(ids[: p.max_copy_tokens])
        self.text = text
        self.copy = copy if p.copy_only else None
        self.text_mask = (text > 0).long()
        self.text_mask[0, 0] = 1  # the padding item reads one position: no all-masked row

    def fit(self, run: "RunContext") -> None:
        p = self.params
        started = time.perf_counter()
        self._prepare(run)
        self.stats["prepare_seconds"] = round(time.perf_counter() - started, 2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.seed)
            self.generator = IdGenerator(len(self.vocab), p.generator, self.vocab.wordlike(), self.vocab.continuation())
        self.generator.to(self.device)
        warm: list[float] = []
        if p.warm_start == "tfidf":
            targets = warm_targets(run.dataset.item_text[1:], self.vocab, p.warm_words, p.length_ranges[0][1] - 1)
            bar = None
            if run.progress:
                from tqdm.auto import tqdm

                bar = lambda total: tqdm(total=total, desc="id-generator warm start", unit="epoch")  # noqa: E731
            dev = self.device
            warm = train_supervised(self.generator, self.text[1:].to(dev), self.text_mask[1:].to(dev),
                                    targets.to(dev), copy_from=self.copy_rows(slice(1, None)), epochs=p.warm_epochs, lr=p.warm_lr,
                                    batch_size=p.warm_batch_size, seed=run.seed, progress=bar,
                                    max_items=p.warm_max_items)
        self.stats["warm_final_loss"] = round(warm[-1], 4) if warm else float("nan")
        self.stats["warm_seconds"] = round(time.perf_counter() - started - self.stats["prepare_seconds"], 2)
        self.regenerate(run, reason="initial")
        self.stats["fit_seconds"] = round(time.perf_counter() - started, 2)
        click.echo(self.summary(), err=True)

    def copy_rows(self, index: object) -> torch.Tensor | None:
        """The pieces items ``index`` may use in their IDs (``None`` unless ``copy_only``)."""
        return None if self.copy is None else self.copy[index].to(self.device)

    def generate(self, items: np.ndarray, groups: int, penalty: float, min_len: int, max_len: int) -> torch.Tensor:
        """Candidates ``[M, groups, L]`` (END-padded to the identifier's ``L``) for ``items``."""
        per_batch = max(1, self.params.generate_batch_size // max(groups, 1))
        out = torch.full((len(items), groups, self.code_length), END, dtype=torch.long)
        idx = torch.as_tensor(np.asarray(items), dtype=torch.long)
        for start in range(0, len(items), per_batch):
            sel = idx[start : start + per_batch]
            rows = self.generator.diverse_ids(self.text[sel].to(self.device), self.text_mask[sel].to(self.device),
                                              groups, penalty, min_len, max_len, self.copy_rows(sel))
            out[start : start + len(sel), :, : rows.shape[2]] = rows.cpu()
        return out

    def regenerate(self, run: "RunContext | None" = None, reason: str = "round") -> dict[str, float]:
        """Assign every item a unique ID with the current generator (Algorithm 1)."""
        p = self.params
        started = time.perf_counter()
        n = self.text.shape[0] - 1
        digits = [self.vocab.index[d] for d in DIGITS]
        result = assign_unique_ids(range(1, n + 1), self.generate, p.groups, p.max_penalty,
                                   [tuple(r) for r in p.length_ranges], digits)
        tokens = np.full((n + 1, self.code_length), END, dtype=np.int64)
        for item, ids in result.ids.items():
            tokens[item, : len(ids)] = ids
        changed = float((tokens[1:] != self.tokens[1:]).any(axis=1).mean()) if self.tokens is not None else 1.0
        self.tokens = tokens
        self.version += 1
        stats = result.stats(n)
        stats["changed_share"] = round(changed, 4)
        stats["seconds"] = round(time.perf_counter() - started, 2)
        self.history.append({"version": self.version, "reason": reason, **stats})
        self.stats.update(stats)
        if run is not None and reason != "initial":
            click.echo(f"textual-id v{self.version}: {self.describe(stats)}", err=True)
        return stats

    # ------------------------------------------------------------------ user IDs
    def user_text(self, items: torch.Tensor, per_item: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What the generator reads to write a user ID (§2.1, "the meta information of all items
        in the user history"): the first ``per_item`` text pieces of each of ``items`` ``[B, N]``
        (item ids, oldest first, 0 = none), concatenated and left-aligned: ``text``, ``mask``
        ``[B, S]`` on the generator's device.  Pieces found in at least half of the item texts
        (field names and punctuation: "title", ":", ";") are skipped: they say nothing about a
        user and would take a quarter of the budget.  A row with no item reads one (masked-in)
        padding position, as the padding item does."""
        items = torch.as_tensor(items).long().cpu()
        rows = self.text[items]  # [B, N, S]: each item's text, already cut to max_text_tokens pieces
        keep = (rows > 0) & ~self._common_pieces()[rows] & (items > 0).unsqueeze(-1)
        keep &= keep.long().cumsum(dim=-1) <= per_item  # the first per_item pieces kept of each item
        keep = keep.flatten(1)
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept pieces first
        width = max(1, int(keep.sum(dim=1).max()))
        mask = keep.gather(1, order)[:, :width].long()
        text = rows.flatten(1).gather(1, order)[:, :width] * mask
        mask[:, 0] = 1
        return text.to(self.device), mask.to(self.device)

    def _common_pieces(self) -> torch.Tensor:
        """``[vocab]`` bool: pieces in at least half of the item texts (computed once per ``text``)."""
        cached = self._common
        if cached is None or cached[0] is not self.text:
            text = self.text[1:]
            vocab = max(self.vocab_size, int(self.text.max()) + 1)
            rows = torch.arange(text.shape[0]).unsqueeze(1).expand_as(text)
            pairs = torch.unique((rows * vocab + text)[text > 0])  # (item, piece), each once
            freq = torch.bincount(pairs % vocab, minlength=vocab)
            cached = (self.text, freq * 2 >= max(text.shape[0], 1))
            self._common = cached
        return cached[1]

    @torch.no_grad()
    def write_user_ids(self, items: torch.Tensor, per_item: int) -> torch.Tensor:
        """``[B, L]`` user IDs (CPU, ``[END]``-padded) written by the current generator from
        :meth:`user_text` by greedy decoding (group 0 of the DBS candidates), ``1 <= pieces < L``.
        User IDs need not be unique (nothing is decoded into a user), so Algorithm 1 is not run;
        ``copy_only`` restricts them to pieces of the text read.  A row of no items gets no ID."""
        items = torch.as_tensor(items).long().cpu()
        out = torch.full((items.shape[0], self.code_length), END, dtype=torch.long)
        has = (items > 0).any(dim=1)
        rows = torch.nonzero(has).flatten()
        lo = self.params.length_ranges[0][0]
        for start in range(0, rows.numel(), self.params.generate_batch_size):
            sel = rows[start : start + self.params.generate_batch_size]
            text, mask = self.user_text(items[sel], per_item)
            copy = text if self.copy is not None else None
            ids = self.generator.diverse_ids(text, mask, 1, 0.0, lo, self.code_length, copy)
            out[sel, : ids.shape[2]] = ids[:, 0].cpu()
        return out

    # ------------------------------------------------------------------ reporting
    @staticmethod
    def describe(stats: dict[str, float]) -> str:
        return (f"{stats['second_attempt_share']:.2%} of items needed a second attempt (penalty > 1), "
                f"{stats['longer_id_share']:.2%} a longer ID; mean length {stats['mean_id_length']:.2f} pieces; "
                f"{stats.get('changed_share', 1.0):.1%} of IDs changed; {stats['seconds']:.1f}s")

    def summary(self) -> str:
        examples = "; ".join(f"{i}: {self.id_text(i)!r}" for i in range(1, min(4, len(self.tokens))))
        return (f"textual-id: {len(self.tokens) - 1} items, vocabulary {self.vocab_size} pieces, "
                f"{self.describe(self.stats)}; e.g. {examples}")

    def id_text(self, item: int) -> str:
        return self.vocab.decode(self.tokens[item])

    def metric_rows(self) -> list[dict[str, Any]]:
        return [{"stage": "identifier", "split": "fit", "domain": "all", "name": key, "k": None, "value": float(v)}
                for key, v in self.stats.items() if isinstance(v, (int, float))]

    # ------------------------------------------------------------------ the contract
    def _require_fitted(self) -> np.ndarray:
        if self.tokens is None:
            raise RuntimeError("textual-id: fit() or load() first")
        return self.tokens

    def item_tokens(self) -> torch.Tensor:
        return torch.from_numpy(self._require_fitted().copy())

    def domain_tokens(self, run: "RunContext", domain: int) -> torch.Tensor:
        """``[n_d, L]`` aligned with ``run.dataset.domain_items[domain]`` (the ``trie`` contract)."""
        tokens = self._require_fitted()
        return torch.from_numpy(tokens[np.flatnonzero(self.item_domain == int(domain))].copy())

    # ------------------------------------------------------------------ artifacts
    def save(self, directory: Path) -> None:
        from mtrec.training.checkpoint import atomic_torch_save, atomic_write_text

        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({"generator": self.generator.state_dict(), "tokens": torch.from_numpy(self.tokens)},
                          directory / "textual_id.pt")
        meta = {"format": FORMAT_VERSION, "identifier": "textual-id", "n_items": len(self.tokens) - 1,
                "version": self.version, "pieces": self.vocab.pieces, "params": self.params.model_dump(mode="json"),
                "stats": self.stats, "history": self.history,
                "examples": {str(i): self.id_text(i) for i in range(1, min(21, len(self.tokens)))}}
        atomic_write_text(directory / "textual_id.json", json.dumps(meta, indent=2))

    def load(self, directory: Path, run: "RunContext | None" = None) -> None:
        directory = Path(directory)
        meta_path = directory / "textual_id.json"
        if not meta_path.is_file():
            raise ConfigError(f"identifier.from_run: {directory} holds no textual-id identifier (textual_id.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.params = TextualIdParams.model_validate(meta["params"])
        self.vocab = PieceVocab(meta["pieces"])
        state = torch.load(directory / "textual_id.pt", map_location="cpu", weights_only=True)
        self.generator = IdGenerator(len(self.vocab), self.params.generator, self.vocab.wordlike(), self.vocab.continuation())
        self.generator.load_state_dict(state["generator"])
        self.generator.eval()
        self.tokens = state["tokens"].numpy().astype(np.int64)
        self.version = int(meta["version"])
        self.stats, self.history = dict(meta["stats"]), list(meta["history"])
        run = run if run is not None else self._run
        if run is not None:
            if run.dataset.n_items != meta["n_items"]:
                raise ConfigError(f"identifier.from_run: the saved textual-id identifier has {meta['n_items']} "
                                  f"items, this dataset has {run.dataset.n_items}")
            self._prepare(run)
            self.generator.to(self.device)
