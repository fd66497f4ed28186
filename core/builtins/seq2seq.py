"""``seq2seq``: a T5 encoder-decoder that writes the next item's identifier tokens (GMC, TIGER).

The model is built from a :class:`transformers.T5Config` and trained from scratch (nothing is
downloaded).  Vocabulary: ``0`` pad (also the decoder start token), ``1`` end-of-sequence
(reserved), ``2 .. 2 + n_domains - 1`` one prompt token per domain, then the identifier's tokens:
identifier token ``t`` is model token ``t + token_offset``.  Decoders never see model tokens; the
:class:`~mtrec.builtins.generative.GenerativeEncoder` methods speak identifier tokens.

Input: the most recent ``data.max_len`` history items, each replaced by its ``L`` identifier tokens
and flattened (left padding masked out), followed by the target domain's prompt token when
``domain_prompt`` is on (default: on for the cross-domain view, where the history alone does not
say which domain to recommend for; off for the single-domain view, as in GMC).  Output: the next
item's ``L`` tokens, teacher-forced, no end token (every id has exactly ``L`` tokens).  Loss: mean
token cross-entropy per example, averaged per target domain.  A subclass for variable-length ids
sets ``end_token`` (the generative contract): the loss then averages over each id's tokens and its
first end token only, the positions decoders score.  With ``task_losses`` the model
trains on the single-domain *and* the cross-domain windows of every user and reports the two
tasks apart (``single/<domain>``, ``cross/<domain>``), which is what SyNCRec's ``ntg-weighting``
needs to measure each domain's negative transfer gap; prediction still reads the ``view`` history.

Defaults follow the TIGER-style T5 that GMC uses: 4 encoder and 4 decoder layers, d_model 128,
6 heads of 64, feed-forward 1024 (ReLU), dropout 0.1 -- 4.46M parameters without the token
embedding (4.59M with a 4 x 256 semantic-ID vocabulary; the paper reports ~4.3M).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from mtrec.builtins.beam_attention import ATTENTION, uniform_group
from mtrec.builtins.dropout import use_packed_dropout
from mtrec.builtins.generative import GenerativeEncoder, id_positions
from mtrec.components import Params
from mtrec.data.views import train_sequences
from mtrec.errors import ConfigError
from mtrec.training.stage import DomainLoss

if TYPE_CHECKING:
    from mtrec.components import Run

PAD, EOS, FIRST_DOMAIN_TOKEN = 0, 1, 2
TASKS = ("single", "cross")  # loss-key prefixes under task_losses (what ntg-weighting reads)


class Seq2SeqParams(Params):
    d_model: int = Field(128, ge=8)
    d_ff: int = Field(1024, ge=8)
    num_layers: int = Field(4, ge=1, description="Encoder layers.")
    num_decoder_layers: int = Field(4, ge=1)
    num_heads: int = Field(6, ge=1)
    d_kv: int = Field(64, ge=4, description="Width of each attention head.")
    dropout: float = Field(0.1, ge=0, lt=1)
    feed_forward_proj: Literal["relu", "gated-gelu"] = "relu"
    relative_attention_num_buckets: int = Field(32, ge=2)
    relative_attention_max_distance: int = Field(128, ge=2)
    view: Literal["single", "cross"] = Field(
        "single", description="History view: the target domain's items only, or all domains merged."
    )
    domain_prompt: bool | None = Field(
        None, description="Append the target domain's token to the input (default: only for view=cross "
                          "or task_losses)."
    )
    task_losses: bool = Field(
        False, description="Train on both history views and report the losses as single/<domain> and "
                           "cross/<domain> (the `task-losses` capability that ntg-weighting reads).",
    )
    history: Literal["tokens", "items"] = Field(
        "tokens", description="Encoder input: every identifier token of every history item (tokens, the "
                              "papers' flattened codes) or one position per item, the sum of its tokens' "
                              "embeddings (items: L times shorter, a CPU-friendly deviation).",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the token cross-entropy.")
    dropout_masks: Literal["packed", "torch"] = Field(
        "packed", description="How a CPU draws the T5's dropout masks: packed (16 random bits an element from "
                              "numpy's PCG64 seeded by torch's generator, ~5x cheaper) or torch (bernoulli_, as "
                              "runs before 2026-12-04 did). Other devices always use torch's.",
    )


@dataclass
class Seq2SeqState:
    """Decoding state: encoder output per example, the example of each decoding row, a KV cache."""

    hidden: torch.Tensor  # [B, S, d_model]
    mask: torch.Tensor  # [B, S] (long, 1 = attend)
    rows: torch.Tensor  # [B'] example index of each row
    cache: object | None = None  # transformers EncoderDecoderCache, self-attention rows aligned with ``rows``
    cross_group: int = 1  # decoding rows per cross-attention cache row (beam_attention: one copy per example)


class Seq2Seq(GenerativeEncoder):
    lora_target_modules = ("q", "v")

    def __init__(self, params: Seq2SeqParams, item_tokens: torch.Tensor, item_domain: torch.Tensor,
                 vocab_size: int, domain_names: list[str], max_len: int) -> None:
        super().__init__()
        from transformers import T5Config, T5ForConditionalGeneration

        self.params = params
        self.max_len = max_len
        self.domain_names = list(domain_names)
        self.code_length = int(item_tokens.shape[1])
        self.identifier_vocab = int(vocab_size)
        self.token_offset = FIRST_DOMAIN_TOKEN + len(domain_names)
        # A cross-domain history does not say which domain to recommend for: prompt it.
        wants_prompt = params.view == "cross" or params.task_losses
        self.domain_prompt = wants_prompt if params.domain_prompt is None else params.domain_prompt
        config = T5Config(
            vocab_size=self.token_offset + self.identifier_vocab,
            d_model=params.d_model, d_ff=params.d_ff, d_kv=params.d_kv,
            num_layers=params.num_layers, num_decoder_layers=params.num_decoder_layers, num_heads=params.num_heads,
            dropout_rate=params.dropout, feed_forward_proj=params.feed_forward_proj,
            relative_attention_num_buckets=params.relative_attention_num_buckets,
            relative_attention_max_distance=params.relative_attention_max_distance,
            pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD,
            tie_word_embeddings=True, use_cache=False, is_encoder_decoder=True,
        )
        self.t5 = T5ForConditionalGeneration(config)
        self.t5.set_attn_implementation(ATTENTION)  # sdpa, without a copy of the encoder states per beam
        if params.dropout_masks == "packed":
            use_packed_dropout(self.t5)
        # Derived from the identifier (saved with it), so not part of the state dict.
        self.register_buffer("item_token_table", item_tokens.long(), persistent=False)
        self.register_buffer("item_domain", item_domain.long().clamp(min=0), persistent=False)

    # ------------------------------------------------------------------ token mapping
    def to_model_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Identifier tokens -> model vocabulary ids."""
        return tokens + self.token_offset

    def to_identifier_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Model vocabulary ids -> identifier tokens (negative for special tokens)."""
        return tokens - self.token_offset

    def _identifier_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[..., self.token_offset : self.token_offset + self.identifier_vocab]

    # ------------------------------------------------------------------ inputs
    def encoder_inputs(self, history: torch.Tensor, domain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``history: tokens``: ``[B, T]`` item ids (left-padded) -> input ids and attention mask
        ``[B, T*L (+1)]``."""
        present = history > 0
        tokens = self.to_model_tokens(self.item_token_table[history])  # [B, T, L]
        ids = torch.where(present.unsqueeze(-1), tokens, torch.zeros_like(tokens)).flatten(1)
        mask = present.repeat_interleave(self.code_length, dim=1)
        if self.domain_prompt:
            ids = torch.cat([ids, (FIRST_DOMAIN_TOKEN + domain).unsqueeze(1)], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return ids, _attend_somewhere(mask, present, self.domain_prompt).long()

    def item_embeddings(self, history: torch.Tensor, domain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``history: items``: ``[B, T]`` item ids -> one input vector per item, the sum of its
        identifier tokens' embeddings (the model's shared token table), and the mask ``[B, T (+1)]``."""
        present = history > 0
        table = self.t5.get_input_embeddings().weight
        tokens = self.to_model_tokens(self.item_token_table[history])  # [B, T, L]
        embeds = F.embedding(tokens, table).sum(dim=2) * present.unsqueeze(-1).to(table.dtype)
        mask = present
        if self.domain_prompt:
            embeds = torch.cat([embeds, F.embedding(FIRST_DOMAIN_TOKEN + domain, table).unsqueeze(1)], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return embeds, _attend_somewhere(mask, present, self.domain_prompt).long()

    def encoder_arguments(self, history: torch.Tensor, domain: torch.Tensor) -> dict[str, torch.Tensor]:
        """The T5 encoder's keyword inputs for a batch of histories, in the configured ``history``
        encoding, without the leading columns no row attends to.  Dropping them is exact (they are
        masked, and T5's relative position bias depends on distances only) and is most of what
        makes a batch of short histories cheap."""
        history = history[:, _first_used_column(history > 0):]
        if self.params.history == "items":
            embeds, mask = self.item_embeddings(history, domain)
            return {"inputs_embeds": embeds, "attention_mask": mask}
        ids, mask = self.encoder_inputs(history, domain)
        return {"input_ids": ids, "attention_mask": mask}

    def example_lengths(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder positions each training example really uses (the trainer batches similar
        lengths together, so trimmed batches stay short)."""
        items = (tensors["history"] > 0).sum(dim=1)
        return items if self.params.history == "items" else items * self.code_length

    def _history(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["history_cross"] if self.params.view == "cross" else batch["history"]

    def _decoder_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: start token, then all but the last identifier token (model ids)."""
        start = torch.full_like(tokens[:, :1], PAD)
        return torch.cat([start, self.to_model_tokens(tokens[:, :-1])], dim=1)

    # ------------------------------------------------------------------ training
    def train_tensors(self, run: "Run", domains: list[int]) -> dict[str, torch.Tensor]:
        """One example per training target: every position after the first of every sequence of
        the ``view`` -- or, with ``task_losses``, of both views, ``task`` 0 (single) / 1 (cross)."""
        if not self.params.task_losses:
            history, target = self._windows(run, domains, self.params.view)
            return {"history": history, "target": target}
        single, cross = self._windows(run, domains, "single"), self._windows(run, domains, "cross")
        task = torch.cat([torch.zeros(len(single[1]), dtype=torch.long), torch.ones(len(cross[1]), dtype=torch.long)])
        return {"history": torch.cat([single[0], cross[0]]), "target": torch.cat([single[1], cross[1]]), "task": task}

    def _windows(self, run: "Run", domains: list[int], view: str) -> tuple[torch.Tensor, torch.Tensor]:
        max_len = run.config.data.max_len
        histories, targets = [], []
        for seq in train_sequences(run.dataset, domains, view):
            if len(seq) < 2:
                continue
            padded = np.concatenate([np.zeros(max_len, dtype=np.int64), seq.astype(np.int64)])
            windows = np.lib.stride_tricks.sliding_window_view(padded, max_len + 1)[1:]
            histories.append(windows[:, :-1])
            targets.append(windows[:, -1])
        if not histories:
            return torch.zeros(0, max_len, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        return torch.as_tensor(np.concatenate(histories)), torch.as_tensor(np.concatenate(targets))

    def domain_losses(self, per_example: torch.Tensor, target: torch.Tensor,
                      task: torch.Tensor | None = None) -> DomainLoss:
        """Mean loss per target domain (keys: domain names), or per (task, domain) with ``task``."""
        domain = self.item_domain[target]
        groups = domain if task is None else task * len(self.domain_names) + domain
        losses, counts = {}, {}
        for g in torch.unique(groups).tolist():
            sel = groups == g
            t, d = divmod(g, len(self.domain_names))
            key = self.domain_names[d] if task is None else f"{TASKS[t]}/{self.domain_names[d]}"
            losses[key] = per_example[sel].mean()
            counts[key] = int(sel.sum())
        return DomainLoss(losses, counts)

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        history, target = batch["history"], batch["target"]
        encoder = self.encoder_arguments(history, self.item_domain[target])
        labels = self.item_token_table[target]  # [B, L] identifier tokens
        logits = self.t5(**encoder, decoder_input_ids=self._decoder_inputs(labels), use_cache=False).logits
        token_ce = F.cross_entropy(
            logits.float().flatten(0, 1), self.to_model_tokens(labels).flatten(), reduction="none",
            label_smoothing=self.params.label_smoothing,
        ).view(labels.shape)
        if self.end_token is None:
            per_example = token_ce.mean(dim=1)
        else:  # variable-length ids: the tokens and the first end token, what decoders score
            counted = id_positions(labels, self.end_token).float()
            per_example = (token_ce * counted).sum(dim=1) / counted.sum(dim=1)
        return self.domain_losses(per_example, target, batch.get("task"))

    # ------------------------------------------------------------------ decoding contract
    def encode(self, batch: dict[str, torch.Tensor]) -> Seq2SeqState:
        encoder = self.encoder_arguments(self._history(batch), batch["domain"])
        mask = encoder["attention_mask"]
        hidden = self.t5.encoder(**encoder).last_hidden_state
        return Seq2SeqState(hidden, mask, torch.arange(mask.shape[0], device=mask.device))

    def select_state(self, state: Seq2SeqState, index: torch.Tensor) -> Seq2SeqState:
        rows, group = state.rows[index], state.cross_group
        if state.cache is not None:
            state.cache.self_attention_cache.batch_select_indices(index)
            cross = state.cache.cross_attention_cache
            if cross.get_seq_length() > 0:
                # Cross-attention keys/values depend on the example only: while every cache row serves
                # a run of consecutive decoding rows (beams widened or reordered within their example)
                # they stay one copy per example; any other layout is copied row by row.
                source = torch.div(index, group, rounding_mode="floor")  # the cache row each new row reads
                if self.t5.config._attn_implementation == ATTENTION:
                    group = uniform_group(source, state.rows.shape[0] // group)
                else:  # another attention reads a cache row per decoding row
                    group = 1 if torch.equal(rows, state.rows) else None
                if group is None:
                    cross.batch_select_indices(source)
                    group = 1
        return replace(state, rows=rows, cross_group=group)

    def _decode(self, state: Seq2SeqState, decoder_ids: torch.Tensor, cache: object | None) -> torch.Tensor:
        n, (s, d) = state.rows.shape[0], state.hidden.shape[1:]
        if cache is not None and cache.cross_attention_cache.get_seq_length() > 0:
            # Cached cross-attention: T5 reads only the shape and dtype of the encoder states, so a
            # zero-stride stand-in avoids copying them once per beam.
            hidden = state.hidden.new_zeros(()).expand(n, s, d)
        else:
            hidden = state.hidden[state.rows]
        out = self.t5(
            encoder_outputs=(hidden,), attention_mask=state.mask[state.rows],
            decoder_input_ids=decoder_ids, use_cache=cache is not None, **{cache_argument(self.t5): cache},
        )
        return out.logits

    def next_token_logits(self, state: Seq2SeqState, prefix: torch.Tensor) -> torch.Tensor:
        start = torch.full((prefix.shape[0], 1), PAD, dtype=torch.long, device=prefix.device)
        decoder_ids = torch.cat([start, self.to_model_tokens(prefix)], dim=1)
        return self._identifier_logits(self._decode(state, decoder_ids, None)[:, -1])

    def step(self, state: Seq2SeqState, prefix: torch.Tensor) -> tuple[torch.Tensor, Seq2SeqState]:
        from transformers import DynamicCache, EncoderDecoderCache

        t = prefix.shape[1]
        if state.cache is not None and state.cache.get_seq_length() == t:
            cache = state.cache  # holds start + prefix[:, :t-1]: feed the newest token only
            decoder_ids = self.to_model_tokens(prefix[:, -1:]) if t else None
        else:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            decoder_ids = None
            state = replace(state, cross_group=1)  # the new cache's cross-attention rows are ``rows``
        if decoder_ids is None:
            start = torch.full((prefix.shape[0], 1), PAD, dtype=torch.long, device=prefix.device)
            decoder_ids = torch.cat([start, self.to_model_tokens(prefix)], dim=1)
        logits = self._decode(state, decoder_ids, cache)[:, -1]
        return self._identifier_logits(logits), replace(state, cache=cache)

    def sequence_logits(self, state: Seq2SeqState, tokens: torch.Tensor) -> torch.Tensor:
        return self._identifier_logits(self._decode(state, self._decoder_inputs(tokens), None))


def _attend_somewhere(mask: torch.Tensor, present: torch.Tensor, prompted: bool) -> torch.Tensor:
    """Without a prompt token an empty history would be an all-masked row (NaN attention): let it
    attend to its last (padding) position instead."""
    if prompted:
        return mask
    return torch.cat([mask[:, :-1], mask[:, -1:] | ~present.any(dim=1, keepdim=True)], dim=1)


def _first_used_column(mask: torch.Tensor) -> int:
    """Index of the first column some row uses (left padding before it is dead weight)."""
    used = mask.any(dim=0)
    return int(torch.argmax(used.to(torch.int8))) if bool(used.any()) else max(mask.shape[1] - 1, 0)


@functools.lru_cache(maxsize=None)
def _cache_name(model_class: type) -> str:
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_argument(model: torch.nn.Module) -> str:
    """The keyword a transformers model takes its KV cache under: transformers 5.x renamed
    ``past_key_values`` to ``cache`` (the old name warns on every call), 4.x only knows the old one."""
    return _cache_name(type(model))


def build_seq2seq(params: Seq2SeqParams, run: "Run") -> Seq2Seq:
    identifier = run.identifier
    if identifier is None:
        raise ConfigError("encoder 'seq2seq' needs a fitted identifier (run.identifier is not set)")
    tokens = torch.as_tensor(identifier.item_tokens()).long().cpu()
    vocab = int(identifier.vocab_size)
    if tokens.dim() != 2 or tokens.shape[0] != run.dataset.n_items + 1:
        raise ConfigError(
            f"identifier {run.config.identifier.name!r}: item_tokens() has shape {tuple(tokens.shape)}, "
            f"expected [n_items + 1 = {run.dataset.n_items + 1}, L]"
        )
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ConfigError(
            f"identifier {run.config.identifier.name!r}: token ids must lie in [0, vocab_size={vocab}), "
            f"found [{int(tokens.min())}, {int(tokens.max())}]"
        )
    return Seq2Seq(
        params, tokens, torch.as_tensor(run.dataset.item_domain), vocab, run.dataset.domains, run.config.data.max_len
    )
