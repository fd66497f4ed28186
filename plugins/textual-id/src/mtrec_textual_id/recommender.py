"""``idgenrec-seq2seq``: IDGenRec's base recommender (§2.1, §2.4) on the core ``seq2seq`` encoder.

The core :class:`~mtrec.builtins.seq2seq.Seq2Seq` reads a flat list of the history's identifier
tokens; this subclass reads a prompt instead: one of the templates of
:mod:`mtrec_textual_id.templates` (sampled per training example; the first one at evaluation)
with the history's textual IDs (their pieces, without ``[END]``) joined by "," at ``{history}``,
in the identifier's word-piece vocabulary.  Everything else -- the T5 from config, the
``encode`` / ``step`` decoding contract that ``trie-beam`` drives, LoRA target modules -- is the
core encoder's.

The target is the next item's ID row (pieces, then ``[END]`` padding to ``L``); the loss is the
mean cross-entropy over its pieces and its first ``[END]`` (Eq. 4; the padding after it is not
scored; the decoder still walks it, a single-child trie path, at search time).

:meth:`soft_loss` is Eq. 5: the same loss with each history item's ID tokens replaced, at the
embedding level, by the generator's soft distribution times this model's token embedding matrix,
so gradients reach the generator while this model stays frozen.

Other identifiers (mixing, e.g. GMC's ``semantic-id``): any identifier providing ``tokens`` works.
One without a word-piece vocabulary of its own gets the prompt words from a tokenizer
(``prompt_text_model``; a vocabulary of the templates' pieces only), appended after the
identifier's tokens: identifier token ``t`` stays ``t`` (the ``trie-beam`` decoder speaks those),
prompt piece ``i`` is ``identifier.vocab_size + i``.  Such IDs are fixed-length with no end marker
(``end_token=None``): every position of an item's row is prompt text and scored by the loss.  The
decoder sees logits over the identifier's own tokens only (the generative contract), as it never
sees the core's pad / domain tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from pydantic import Field

from mtrec.builtins.seq2seq import FIRST_DOMAIN_TOKEN, PAD, Seq2Seq, Seq2SeqParams
from mtrec.errors import ConfigError
from mtrec.training.stage import DomainLoss

from mtrec_textual_id.generator import id_positions
from mtrec_textual_id.templates import SEPARATOR, TEMPLATES, split_template
from mtrec_textual_id.vocab import END, PieceVocab, load_tokenizer, prompt_vocab

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


class IdGenRecParams(Seq2SeqParams):
    templates: int = Field(len(TEMPLATES), ge=1, le=len(TEMPLATES),
                           description="Training samples one of the first N templates per example (paper: 10).")
    prompt_text_model: str = Field(
        "all-MiniLM-L6-v2", description="Whose word-piece tokenizer writes the prompt words when the identifier "
        "has no vocabulary of its own (e.g. semantic-id); textual-id uses its own vocabulary.")


def _pad_rows(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max(len(r) for r in rows))
    table = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        table[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return table, torch.as_tensor([len(r) for r in rows])


class IdGenRecRecommender(Seq2Seq):
    def __init__(self, params: IdGenRecParams, item_tokens: torch.Tensor, item_domain: torch.Tensor,
                 vocab_size: int, domain_names: list[str], max_len: int,
                 prompts: list[tuple[list[int], list[int]]], separator: int, end_token: int | None = END,
                 decode_vocab: int | None = None) -> None:
        """``vocab_size``: identifier tokens plus prompt pieces (all the model reads and writes);
        ``decode_vocab``: the first that many are what decoders see (default: all); ``end_token``:
        the token that ends (and pads) an ID row, ``None`` for fixed-length IDs."""
        super().__init__(params, item_tokens, item_domain, vocab_size, domain_names, max_len)
        self.end_token = end_token
        self.decode_vocab = self.identifier_vocab if decode_vocab is None else int(decode_vocab)
        prefix, prefix_len = _pad_rows([p for p, _ in prompts])
        suffix, suffix_len = _pad_rows([s for _, s in prompts])
        for name, value in (("prefix", prefix), ("prefix_len", prefix_len), ("suffix", suffix), ("suffix_len", suffix_len)):
            self.register_buffer(name, value, persistent=False)
        self.separator = int(separator)
        self.n_templates = len(prompts)

    def set_item_tokens(self, tokens: torch.Tensor) -> None:
        """New IDs after a regeneration (same ``[n_items + 1, L]`` shape)."""
        self.item_token_table.copy_(torch.as_tensor(tokens).to(self.item_token_table.device))

    # ------------------------------------------------------------------ prompts
    def prompt_slots(self, history: torch.Tensor, template: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The prompt before compaction: ``ids``, ``mask``, ``slot`` (is an item-ID piece) ``[B, N0]``,
        and ``order`` ``[B, W]``, the positions of the kept tokens, left-aligned."""
        b, t = history.shape
        present = history > 0
        tok = self.item_token_table[history]  # [B, T, L]
        real = self._real(tok) & present.unsqueeze(-1)
        last = torch.arange(t, device=history.device) == t - 1  # left padding: column T-1 is the newest
        sep = torch.full_like(tok[..., :1], self.separator)
        sep_mask = (present & ~last).unsqueeze(-1)
        items = torch.cat([tok, sep], dim=-1).flatten(1)
        items_mask = torch.cat([real, sep_mask], dim=-1).flatten(1)
        slot_items = torch.cat([real, torch.zeros_like(sep_mask)], dim=-1).flatten(1)
        pre, suf = self.prefix[template], self.suffix[template]
        pre_mask = torch.arange(pre.shape[1], device=pre.device) < self.prefix_len[template].unsqueeze(1)
        suf_mask = torch.arange(suf.shape[1], device=suf.device) < self.suffix_len[template].unsqueeze(1)
        ids = torch.cat([pre, items, suf], dim=1)
        mask = torch.cat([pre_mask, items_mask, suf_mask], dim=1)
        slot = torch.cat([torch.zeros_like(pre_mask), slot_items, torch.zeros_like(suf_mask)], dim=1)
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
        width = int(mask.sum(dim=1).max())
        return ids, mask, slot, order[:, :width]

    def _real(self, tok: torch.Tensor) -> torch.Tensor:
        """Positions of ID rows that hold ID tokens (not the end marker or its padding)."""
        return torch.ones_like(tok, dtype=torch.bool) if self.end_token is None else tok != self.end_token

    def _identifier_logits(self, logits: torch.Tensor) -> torch.Tensor:
        # decoders speak the identifier's tokens: prompt-only pieces appended after them are hidden
        return logits[..., self.token_offset : self.token_offset + self.decode_vocab]

    def _finish(self, mask: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        return torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1) if self.domain_prompt else mask

    def encoder_inputs(self, history: torch.Tensor, domain: torch.Tensor,
                       template: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if template is None:
            template = torch.zeros_like(domain)
        ids, mask, _, order = self.prompt_slots(history, template)
        mask = mask.gather(1, order)
        ids = torch.where(mask, self.to_model_tokens(ids.gather(1, order)), torch.full_like(order, PAD))
        if self.domain_prompt:
            ids = torch.cat([ids, (FIRST_DOMAIN_TOKEN + domain).unsqueeze(1)], dim=1)
        return ids, self._finish(mask, domain).long()

    def _sample_templates(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randint(self.params.templates, (n,), device=device)

    # ------------------------------------------------------------------ losses
    def _target_loss(self, target: torch.Tensor, task: torch.Tensor | None = None,
                     **encoder: torch.Tensor) -> DomainLoss:
        labels = self.item_token_table[target]
        logits = self.t5(decoder_input_ids=self._decoder_inputs(labels), use_cache=False, **encoder).logits
        ce = F.cross_entropy(logits.float().flatten(0, 1), self.to_model_tokens(labels).flatten(),
                             reduction="none").view(labels.shape)
        counted = id_positions(labels, self.end_token)
        per_example = (ce * counted).sum(dim=1) / counted.sum(dim=1)
        return self.domain_losses(per_example, target, task)  # per domain, or per (task, domain): task_losses

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        history, target = batch["history"], batch["target"]
        template = self._sample_templates(history.shape[0], history.device)
        ids, mask = self.encoder_inputs(history, self.item_domain[target], template)
        return self._target_loss(target, batch.get("task"), input_ids=ids, attention_mask=mask)

    def soft_loss(self, batch: dict[str, torch.Tensor], items: torch.Tensor, probs: torch.Tensor) -> DomainLoss:
        """Eq. 5: ``probs`` ``[U, L, V]`` is the generator's distribution at each ID position of
        ``items`` ``[U]`` (every item of the batch's histories)."""
        history, target = batch["history"], batch["target"]
        domain = self.item_domain[target]
        template = self._sample_templates(history.shape[0], history.device)
        ids, mask, slot, order = self.prompt_slots(history, template)
        table = self.t5.get_input_embeddings().weight  # [model vocab, d]
        hard = table[self.to_model_tokens(ids)]
        soft_items = probs.to(table.dtype) @ table[self.token_offset : self.token_offset + self.identifier_vocab]
        lookup = torch.zeros(self.item_token_table.shape[0], dtype=torch.long, device=history.device)
        lookup[items] = torch.arange(items.numel(), device=history.device)
        soft = soft_items[lookup[history]]  # [B, T, L, d]
        soft = torch.cat([soft, torch.zeros_like(soft[:, :, :1])], dim=2).flatten(1, 2)
        b, d = history.shape[0], table.shape[1]
        soft = torch.cat([soft.new_zeros(b, self.prefix.shape[1], d), soft, soft.new_zeros(b, self.suffix.shape[1], d)], 1)
        embeds = torch.where(slot.unsqueeze(-1), soft, hard)
        embeds = embeds.gather(1, order.unsqueeze(-1).expand(-1, -1, d))
        mask = mask.gather(1, order)
        if self.domain_prompt:
            embeds = torch.cat([embeds, table[FIRST_DOMAIN_TOKEN + domain].unsqueeze(1)], dim=1)
        return self._target_loss(target, batch.get("task"), inputs_embeds=embeds,
                                 attention_mask=self._finish(mask, domain).long())


def build_idgenrec_seq2seq(params: IdGenRecParams, run: "RunContext") -> IdGenRecRecommender:
    identifier = run.identifier
    if identifier is None:
        raise ConfigError("encoder 'idgenrec-seq2seq' needs a fitted identifier (run.identifier is not set)")
    domains = torch.as_tensor(run.dataset.item_domain)
    vocab = getattr(identifier, "vocab", None)
    if isinstance(vocab, PieceVocab):  # textual-id: prompts and IDs share its word-piece vocabulary
        prompts = []
        for template in TEMPLATES:
            prefix, suffix = split_template(template)
            prompts.append((vocab.encode(prefix), vocab.encode(suffix)))
        tokens = torch.as_tensor(identifier.item_tokens()).long()
        return IdGenRecRecommender(params, tokens, domains, len(vocab), run.dataset.domains,
                                   run.config.data.max_len, prompts, vocab.index[SEPARATOR])
    return _build_mixed(params, run, identifier, domains)


def _build_mixed(params: IdGenRecParams, run: "RunContext", identifier: object,
                 domains: torch.Tensor) -> IdGenRecRecommender:
    """An identifier without word pieces (semantic-id, atomic, ...): prompt pieces after its tokens."""
    name = run.config.identifier.name
    tokens = torch.as_tensor(identifier.item_tokens()).long().cpu()
    id_vocab = int(getattr(identifier, "vocab_size", 0) or 0)
    if tokens.dim() != 2 or tokens.shape[0] != run.dataset.n_items + 1:
        raise ConfigError(f"identifier {name!r}: item_tokens() has shape {tuple(tokens.shape)}, "
                          f"expected [n_items + 1 = {run.dataset.n_items + 1}, L]")
    low, high = (int(tokens.min()), int(tokens.max())) if tokens.numel() else (0, 0)
    if id_vocab <= 0 or low < 0 or high >= id_vocab:
        raise ConfigError(f"identifier {name!r}: token ids must lie in [0, vocab_size={id_vocab}) for encoder "
                          f"'idgenrec-seq2seq', found [{low}, {high}]")
    parts = [split_template(t) for t in TEMPLATES]
    words = prompt_vocab(load_tokenizer(params.prompt_text_model, "encoder.params.prompt_text_model"),
                         [text for pair in parts for text in pair], SEPARATOR)

    def encode(text: str) -> list[int]:
        return [id_vocab + i for i in words.encode(text)]

    prompts = [(encode(prefix), encode(suffix)) for prefix, suffix in parts]
    return IdGenRecRecommender(params, tokens, domains, id_vocab + len(words), run.dataset.domains,
                               run.config.data.max_len, prompts, id_vocab + words.index[SEPARATOR],
                               end_token=None, decode_vocab=id_vocab)
