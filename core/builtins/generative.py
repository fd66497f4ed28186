"""The contract between generative encoders and the decoders that search their output.

A generative encoder models ``P(next item's identifier tokens | history)`` one token at a time.
Decoders (``trie-beam`` here; plugins may add others) drive it through four methods and never
look inside it:

* ``encode(batch) -> state``: run the history side once.  ``batch`` is an evaluation batch
  (``history`` / ``history_cross`` ``[B, T]`` left-padded item ids, ``domain`` ``[B]``, ...);
  the encoder picks the view it was configured with.  The state is opaque to the decoder; it has
  one *row* per example.
* ``select_state(state, index) -> state``: rows ``index`` ``[B']`` of the current rows (repeat a
  user's row once per beam, reorder beams).  Selecting from a freshly encoded state (before any
  ``step``) leaves that state usable; after a ``step`` a state may share mutable caches, so the
  argument of ``select_state`` / ``step`` counts as consumed.
* ``step(state, prefix) -> (logits, state)``: ``prefix`` ``[B', t]`` holds the identifier tokens
  decoded so far (``t`` may be 0); returns logits ``[B', identifier.vocab_size]`` for token
  ``t`` **in identifier token space** (the encoder hides its own special tokens and offsets).
  Successive calls extend the previous prefix by one token, so an encoder may keep a key/value
  cache in the state; the default implementation calls ``next_token_logits`` (no cache).
* ``sequence_logits(state, tokens) -> [B', t, V]``: teacher-forced logits, position ``l`` being
  the distribution of ``tokens[:, l]`` given ``tokens[:, :l]`` (scores sampled candidates); the
  default loops over ``next_token_logits``.

Subclasses implement ``encode``, ``select_state`` and ``next_token_logits`` at least, set
``code_length`` (tokens per item, the identifier's ``L``), and keep the usual training methods of
:class:`~mtrec.components.Encoder` (``train_tensors``, ``loss``).  Logits may come back in bf16
under autocast; decoders take ``log_softmax`` in float32 over the identifier vocabulary.

Identifiers used with these encoders hand out fixed-length token rows (``item_tokens()``
``[n_items + 1, L]``, ``domain_tokens(run, d)`` ``[n_d, L]``, rows unique within a domain).  An
identifier with variable-length ids pads them to ``L`` with a dedicated end token (IDGenRec's
``[END]``).  An encoder trained on such rows sets ``end_token`` to that token: an id then consists
of its tokens up to and including the *first* end token (:func:`id_positions`); the loss counts
those positions only, and decoders score the same positions -- a hypothesis that has emitted the
end token keeps its score unchanged in later steps, and a teacher-forced candidate's score is the
sum of its log-probabilities up to and including its end token.  The padding after the end token
is never trained, so its log-probabilities are arbitrary and must not enter a score (they would
rank ids by length, not by likelihood).  ``end_token = None`` (the default; fixed-length ids such
as semantic ids, where every token, 0 included, is a real code): every position counts.  An
identifier whose tokens change during a run (a trainable one) increments an integer attribute
``version`` so decoders rebuild what they cached.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from mtrec.components import Encoder


class GenerativeEncoder(Encoder):
    """Base class of generative (next-token) encoders; see the module docstring for the contract."""

    family: ClassVar[str] = "generative"
    #: tokens per item (the identifier's L); set by the subclass
    code_length: int = 1
    #: the identifier token that ends (and pads) a variable-length id; ``None``: fixed-length ids
    end_token: int | None = None
    #: default ``target_modules`` for LoRA adapters (``unified-then-lora``), if the encoder knows
    lora_target_modules: ClassVar[tuple[str, ...] | None] = None

    def encode(self, batch: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def select_state(self, state: Any, index: torch.Tensor) -> Any:
        raise NotImplementedError

    def next_token_logits(self, state: Any, prefix: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, state: Any, prefix: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.next_token_logits(state, prefix), state

    def sequence_logits(self, state: Any, tokens: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.next_token_logits(state, tokens[:, :l]) for l in range(tokens.shape[1])], dim=1)


def id_positions(tokens: torch.Tensor, end_token: int | None) -> torch.Tensor:
    """``[..., L]`` bool mask of the positions an id consists of: its tokens up to and including
    the first ``end_token`` (everything when ``end_token`` is ``None``, or when a row holds none).
    What a generative encoder's loss counts and what decoders score (module docstring)."""
    if end_token is None:
        return torch.ones_like(tokens, dtype=torch.bool)
    before = torch.ones_like(tokens, dtype=torch.bool)
    before[..., 1:] = tokens[..., :-1] != end_token
    return torch.cumprod(before.to(torch.int8), dim=-1).bool()
