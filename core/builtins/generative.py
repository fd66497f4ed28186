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
identifier with variable-length ids pads them to ``L`` with a dedicated end token, which decoders
treat as an ordinary token.  An identifier whose tokens change during a run (a trainable one)
increments an integer attribute ``version`` so decoders rebuild what they cached.
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
