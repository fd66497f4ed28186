"""``idgenrec-seq2seq``: IDGenRec's base recommender (§2.1, §2.4) on the core ``seq2seq`` encoder.

The core :class:`~mtrec.builtins.seq2seq.Seq2Seq` reads a flat list of the history's identifier
tokens; this subclass reads a prompt instead: one of the templates of
:mod:`mtrec_textual_id.templates` (sampled per training example; the first one at evaluation)
with the history's textual IDs (their pieces, without ``[END]``) joined by "," at ``{history}``,
in the identifier's word-piece vocabulary.  Everything else -- the T5 from config, the
``encode`` / ``step`` decoding contract that ``trie-beam`` drives, LoRA target modules -- is the
core encoder's.

The target is the next item's ID row (pieces, then ``[END]`` padding to ``L``); the loss is the
mean cross-entropy over its pieces and its first ``[END]`` (Eq. 4).  The padding after it is never
trained, so nothing scores it: ``end_token`` tells the core ``trie-beam`` decoder where each ID
ends (the generative contract), and a beam that has written ``[END]`` keeps its score while the
search walks the padding (a single-child trie path); a sampled candidate's score likewise sums its
pieces and its first ``[END]`` only.

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

User IDs (§2.1, Table 6; ``user_ids``, default ``none``: the prompts above, unchanged): the ID
generator also writes a user ID, from the text of the history's items
(:meth:`TextualIdIdentifier.write_user_ids`: the first ``user_item_tokens`` pieces of each of the
``user_items`` most recent history items, oldest first, skipping pieces found in most item texts
such as "title :"; greedy decoding, ``1 <= pieces < L``; no uniqueness, since nothing is decoded
into a user).  ``with-items`` uses the user-aware templates
("User {user} has purchased items {history}; ..."), the user ID before the history's item IDs;
``only`` leaves the item IDs out (Table 6's "only user IDs").  Each example's user ID is a function
of the history its prompt shows (the same history tensor), so it reads nothing at or after the
target: training windows, validation and test examples alike.  Computed when an example is first
seen and cached per (those recent items, identifier ``version``): a regeneration of the item IDs
(alternate training) also renews every user ID.  Eq. 5 (:meth:`soft_loss`) may take the generator's
soft distribution over the user ID too (``user_probs``), so the generator also learns from user IDs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal

import click
import torch
import torch.nn.functional as F
from pydantic import Field

from mtrec.builtins.seq2seq import FIRST_DOMAIN_TOKEN, PAD, Seq2Seq, Seq2SeqParams
from mtrec.errors import ConfigError
from mtrec.training.stage import DomainLoss

from mtrec_textual_id.generator import id_positions
from mtrec_textual_id.templates import LAYOUTS, SEPARATOR, TEMPLATES, split_template, template_parts
from mtrec_textual_id.vocab import END, PieceVocab, load_tokenizer, prompt_vocab

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


class IdGenRecParams(Seq2SeqParams):
    templates: int = Field(len(TEMPLATES), ge=1, le=len(TEMPLATES),
                           description="Training samples one of the first N templates per example (paper: 10).")
    prompt_text_model: str = Field(
        "all-MiniLM-L6-v2", description="Whose word-piece tokenizer writes the prompt words when the identifier "
        "has no vocabulary of its own (e.g. semantic-id); textual-id uses its own vocabulary.")
    user_ids: Literal["none", "with-items", "only"] = Field(
        "none", description="IDGenRec's optional user IDs (Table 6): none; a user ID written by the ID generator "
        "from the history's item texts, before the history's item IDs (with-items); or instead of them (only). "
        "Needs the textual-id identifier.")
    user_items: int = Field(5, ge=1, description="A user ID reads the text of the history's most recent N items.")
    user_item_tokens: int = Field(8, ge=1, description="... the first that many text pieces of each (at most "
                                  "identifier.params.max_text_tokens).")


ITEM_PIECE, USER_PIECE = 1, 2  # prompt_slots' kinds; 0 is prompt text or a separator
PARTS = ("prefix", "middle", "suffix")  # buffer names of a template's text parts (middle: two slots)


class UserIds:
    """History -> user ID rows ``[B, L]`` (see the module docstring), cached.

    ``identifier`` provides ``user_text(items, per_item)``, ``write_user_ids(items, per_item)``,
    ``version`` and ``device`` (:class:`~mtrec_textual_id.identifier.TextualIdIdentifier`).  A plain
    object, not a module: the generator is no part of the recommender's parameters or state."""

    def __init__(self, identifier: Any, items: int, item_tokens: int) -> None:
        self.identifier = identifier
        self.items = int(items)
        self.item_tokens = int(item_tokens)
        self._cache: dict[bytes, torch.Tensor] = {}
        self._version: object = None

    def recent(self, history: torch.Tensor) -> torch.Tensor:
        """The items a user ID reads: the last ``items`` columns (left padding: the newest last)."""
        return history[:, -self.items :]

    def text(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the generator reads for each row (Eq. 5 teacher-forces it)."""
        return self.identifier.user_text(self.recent(history).cpu(), self.item_tokens)

    @torch.compiler.disable  # Python-side cache and decoding: outside a compiled loss graph
    def __call__(self, history: torch.Tensor) -> torch.Tensor:
        version = getattr(self.identifier, "version", None)
        if version != self._version:  # the generator changed (a regeneration): every user ID is stale
            self._cache.clear()
            self._version = version
        recent = self.recent(history).cpu().numpy()
        keys = [row.tobytes() for row in recent]
        missing = {k: i for i, k in enumerate(keys) if k not in self._cache}
        if missing:
            # full precision whatever the caller's autocast: a history's user ID does not depend on
            # where it is first needed (training step, validation, test)
            device = getattr(self.identifier, "device", torch.device("cpu"))
            with torch.autocast(torch.device(device).type, enabled=False):
                rows = self.identifier.write_user_ids(torch.as_tensor(recent[list(missing.values())]),
                                                      self.item_tokens)
            if not self._cache:  # the first user IDs of this generator: show one
                vocab = getattr(self.identifier, "vocab", None)
                example = vocab.decode(rows[0].tolist()) if vocab is not None else rows[0].tolist()
                click.echo(f"user IDs (identifier v{version}), written from the text of each history's last "
                           f"{self.items} items; e.g. {example!r}", err=True)
            self._cache.update(zip(missing, rows.cpu()))
        return torch.stack([self._cache[k] for k in keys]).to(history.device)


def _pad_rows(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max(len(r) for r in rows))
    table = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        table[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return table, torch.as_tensor([len(r) for r in rows])


class IdGenRecRecommender(Seq2Seq):
    def __init__(self, params: IdGenRecParams, item_tokens: torch.Tensor, item_domain: torch.Tensor,
                 vocab_size: int, domain_names: list[str], max_len: int,
                 prompts: list[tuple[list[int], ...]], separator: int, end_token: int | None = END,
                 decode_vocab: int | None = None,
                 users: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """``vocab_size``: identifier tokens plus prompt pieces (all the model reads and writes);
        ``decode_vocab``: the first that many are what decoders see (default: all); ``end_token``:
        the token that ends (and pads) an ID row, ``None`` for fixed-length IDs; ``prompts``: per
        template, its text parts around the slots of ``LAYOUTS[params.user_ids]`` (``(prefix,
        suffix)`` around the history; ``(prefix, middle, suffix)`` around user and history);
        ``users``: history ``[B, T]`` -> user ID rows ``[B, Lu]`` (e.g. :class:`UserIds`), needed
        when ``params.user_ids`` is on."""
        super().__init__(params, item_tokens, item_domain, vocab_size, domain_names, max_len)
        self.end_token = end_token
        self.decode_vocab = self.identifier_vocab if decode_vocab is None else int(decode_vocab)
        self.slots = LAYOUTS[params.user_ids][1]
        if any(len(p) != len(self.slots) + 1 for p in prompts):
            raise ValueError(f"user_ids={params.user_ids!r}: each prompt has {len(self.slots) + 1} text parts "
                             f"around {self.slots}")
        if "user" in self.slots and users is None:
            raise ValueError(f"user_ids={params.user_ids!r} needs ``users`` (who writes the user IDs)")
        self.users = users if "user" in self.slots else None
        self.part_names = PARTS[:: 2] if len(self.slots) == 1 else PARTS
        for j, name in enumerate(self.part_names):
            table, length = _pad_rows([p[j] for p in prompts])
            self.register_buffer(name, table, persistent=False)
            self.register_buffer(name + "_len", length, persistent=False)
        self.separator = int(separator)
        self.n_templates = len(prompts)

    def set_item_tokens(self, tokens: torch.Tensor) -> None:
        """New IDs after a regeneration (same ``[n_items + 1, L]`` shape)."""
        self.item_token_table.copy_(torch.as_tensor(tokens).to(self.item_token_table.device))

    # ------------------------------------------------------------------ prompts
    def user_tokens(self, history: torch.Tensor) -> torch.Tensor | None:
        """The user ID rows of ``history``'s examples, ``None`` when the prompt holds none."""
        return None if self.users is None else self.users(history)

    def prompt_slots(self, history: torch.Tensor, template: torch.Tensor,
                     user: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The prompt before compaction: ``ids``, ``mask``, ``kind`` ``[B, N0]`` (0: prompt text or
        separator, ``ITEM_PIECE``: an item-ID piece, ``USER_PIECE``: a user-ID piece), and
        ``order`` ``[B, W]``, the positions of the kept tokens, left-aligned.  ``user`` ``[B, Lu]``:
        the user ID rows (``user_ids`` on; default: :meth:`user_tokens`)."""
        if user is None and "user" in self.slots:
            user = self.user_tokens(history)
        segments = []
        for j, name in enumerate(self.part_names):
            part, length = getattr(self, name)[template], getattr(self, name + "_len")[template]
            part_mask = torch.arange(part.shape[1], device=part.device) < length.unsqueeze(1)
            segments.append((part, part_mask, torch.zeros_like(part_mask, dtype=torch.int8)))
            if j < len(self.slots):
                segments.append(self._history_segment(history) if self.slots[j] == "history"
                                else self._user_segment(user))
        ids = torch.cat([s[0] for s in segments], dim=1)
        mask = torch.cat([s[1] for s in segments], dim=1)
        kind = torch.cat([s[2] for s in segments], dim=1)
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
        width = int(mask.sum(dim=1).max())
        return ids, mask, kind, order[:, :width]

    def _history_segment(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The history's item IDs joined by the separator: ids, mask, kind ``[B, T * (L + 1)]``."""
        t = history.shape[1]
        present = history > 0
        tok = self.item_token_table[history]  # [B, T, L]
        real = self._real(tok) & present.unsqueeze(-1)
        last = torch.arange(t, device=history.device) == t - 1  # left padding: column T-1 is the newest
        sep = torch.full_like(tok[..., :1], self.separator)
        sep_mask = (present & ~last).unsqueeze(-1)
        items = torch.cat([tok, sep], dim=-1).flatten(1)
        items_mask = torch.cat([real, sep_mask], dim=-1).flatten(1)
        slot_items = torch.cat([real, torch.zeros_like(sep_mask)], dim=-1).flatten(1)
        return items, items_mask, slot_items.to(torch.int8) * ITEM_PIECE

    def _user_segment(self, user: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        real = self._real(user)
        return user, real, real.to(torch.int8) * USER_PIECE

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

    def soft_loss(self, batch: dict[str, torch.Tensor], items: torch.Tensor | None, probs: torch.Tensor | None,
                  user_probs: torch.Tensor | None = None) -> DomainLoss:
        """Eq. 5: ``probs`` ``[U, L, V]`` is the generator's distribution at each ID position of
        ``items`` ``[U]`` (every item of the batch's histories; ``None`` when the prompt holds no
        item IDs, ``user_ids=only``).  ``user_probs`` ``[B, Lu, V]`` (optional): the same for each
        example's user ID (:meth:`user_tokens`, teacher-forced); without it user IDs are constants."""
        history, target = batch["history"], batch["target"]
        domain = self.item_domain[target]
        template = self._sample_templates(history.shape[0], history.device)
        user = self.user_tokens(history)
        ids, mask, kind, order = self.prompt_slots(history, template, user)
        table = self.t5.get_input_embeddings().weight  # [model vocab, d]
        hard = table[self.to_model_tokens(ids)]
        id_table = table[self.token_offset : self.token_offset + self.identifier_vocab]
        b, d = history.shape[0], table.shape[1]
        soft_parts = []
        for j, name in enumerate(self.part_names):
            soft_parts.append(hard.new_zeros(b, getattr(self, name).shape[1], d))
            if j == len(self.slots):
                break
            if self.slots[j] == "history":
                soft_items = probs.to(table.dtype) @ id_table
                lookup = torch.zeros(self.item_token_table.shape[0], dtype=torch.long, device=history.device)
                lookup[items] = torch.arange(items.numel(), device=history.device)
                soft = soft_items[lookup[history]]  # [B, T, L, d]
                soft_parts.append(torch.cat([soft, torch.zeros_like(soft[:, :, :1])], dim=2).flatten(1, 2))
            else:  # the user ID: soft when the generator's distribution over it is given
                soft_parts.append(hard.new_zeros(b, user.shape[1], d) if user_probs is None
                                  else user_probs.to(table.dtype) @ id_table)
        soft = torch.cat(soft_parts, 1)
        slot = (kind == ITEM_PIECE) | ((kind == USER_PIECE) & (user_probs is not None))
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
    if params.history != "tokens":
        # IDGenRec's input is a text prompt with the history's IDs written into it, token by token
        raise ConfigError("encoder.params.history: 'idgenrec-seq2seq' reads a prompt of ID tokens; only "
                          "history=tokens is possible")
    domains = torch.as_tensor(run.dataset.item_domain)
    vocab = getattr(identifier, "vocab", None)
    if isinstance(vocab, PieceVocab):  # textual-id: prompts and IDs share its word-piece vocabulary
        templates, slots = LAYOUTS[params.user_ids]
        prompts = [tuple(vocab.encode(part) for part in template_parts(t, slots)) for t in templates]
        tokens = torch.as_tensor(identifier.item_tokens()).long()
        return IdGenRecRecommender(params, tokens, domains, len(vocab), run.dataset.domains,
                                   run.config.data.max_len, prompts, vocab.index[SEPARATOR],
                                   users=_user_ids(params, run, identifier))
    if params.user_ids != "none":
        raise ConfigError(f"encoder.params.user_ids={params.user_ids!r} needs the 'textual-id' identifier (its ID "
                          f"generator writes the user IDs); identifier {run.config.identifier.name!r} has none: "
                          "set encoder.params.user_ids=none")
    return _build_mixed(params, run, identifier, domains)


def _user_ids(params: IdGenRecParams, run: "RunContext", identifier: Any) -> UserIds | None:
    if params.user_ids == "none":
        return None
    if getattr(identifier, "generator", None) is None or not hasattr(identifier, "write_user_ids"):
        raise ConfigError(f"encoder.params.user_ids={params.user_ids!r}: identifier {run.config.identifier.name!r} "
                          "has no ID generator to write user IDs (textual-id has one)")
    # an item's text is stored cut to identifier.params.max_text_tokens pieces: no more to read
    return UserIds(identifier, params.user_items, min(params.user_item_tokens, int(identifier.text.shape[1])))


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
