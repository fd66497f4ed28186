"""The ID generator (papers/idgenrec.md §2.2): a T5 that reads an item's plain text and writes its ID.

Built from a :class:`transformers.T5Config` (no pretrained checkpoint is reachable here) over the
compact word-piece vocabulary of :mod:`mtrec_textual_id.vocab`.  Model token ``0`` is padding and
the decoder start; compact id ``c`` is model token ``c + 1``, so the vocabulary's ``[END]`` (0) is
the model's end-of-sequence token (1).  Everything public speaks compact ids.

* :meth:`IdGenerator.supervised_loss`: teacher-forced cross-entropy of target IDs (warm start);
* :meth:`IdGenerator.soft_tokens`: the softmax over the vocabulary at each position of given IDs
  (teacher-forced on them), the differentiable stand-in for the discrete ID of Eq. 5;
* ``copy_from`` (optional everywhere): ``[N, A]`` the pieces of each item's text; the distribution
  is then restricted to those pieces that hold a letter or digit, plus ``[END]`` -- IDs are made of
  words of the item's own text (see the README: what every ID of the paper's Figure 3 is, and what
  keeps a generator trained from scratch on a CPU budget from writing the same words for every item);
* :meth:`IdGenerator.diverse_ids`: diverse beam search (Vijayakumar et al. 2018) with ``groups``
  groups of one beam each and a Hamming diversity penalty ``penalty``, constrained to IDs of
  ``min_len <= tokens < max_len``.  Hand-written because transformers 5 moved group beam search
  to a Hub repository (``transformers-community/group-beam-search``), which is unreachable offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mtrec.builtins.generative import id_positions as core_id_positions
from mtrec.builtins.seq2seq import cache_argument
from mtrec.components import Params

from mtrec_textual_id.vocab import END, UNK

PAD = 0  # model token: padding and decoder start
OFFSET = 1  # compact id c <-> model token c + 1


class GeneratorParams(Params):
    d_model: int = Field(64, ge=8)
    d_ff: int = Field(256, ge=8)
    num_layers: int = Field(2, ge=1)
    num_decoder_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    d_kv: int = Field(16, ge=4)
    dropout: float = Field(0.1, ge=0, lt=1)


class IdGenerator(nn.Module):
    def __init__(self, vocab_size: int, params: GeneratorParams | None = None,
                 wordlike: list[bool] | None = None, continuation: list[bool] | None = None) -> None:
        super().__init__()
        from transformers import T5Config, T5ForConditionalGeneration

        p = params or GeneratorParams()
        self.vocab_size = int(vocab_size)
        config = T5Config(
            vocab_size=self.vocab_size + OFFSET, d_model=p.d_model, d_ff=p.d_ff, d_kv=p.d_kv,
            num_layers=p.num_layers, num_decoder_layers=p.num_decoder_layers, num_heads=p.num_heads,
            dropout_rate=p.dropout, feed_forward_proj="relu", pad_token_id=PAD, eos_token_id=END + OFFSET,
            decoder_start_token_id=PAD, tie_word_embeddings=True, use_cache=False, is_encoder_decoder=True,
        )
        self.t5 = T5ForConditionalGeneration(config)
        word = torch.ones(self.vocab_size, dtype=torch.bool) if wordlike is None else torch.as_tensor(wordlike)
        self.register_buffer("wordlike", word, persistent=False)
        cont = torch.zeros(self.vocab_size, dtype=torch.bool) if continuation is None else torch.as_tensor(continuation)
        self.register_buffer("continuation", cont, persistent=False)

    def allowed(self, copy_from: torch.Tensor) -> torch.Tensor:
        """``[N, V]``: the word-like pieces of ``copy_from`` ``[N, A]``, and ``[END]``."""
        mask = torch.zeros(copy_from.shape[0], self.vocab_size, dtype=torch.bool, device=copy_from.device)
        mask.scatter_(1, copy_from, True)
        mask &= self.wordlike
        mask[:, END] = True
        return mask

    # ------------------------------------------------------------------ teacher forcing
    def logits(self, text: torch.Tensor, text_mask: torch.Tensor, ids: torch.Tensor,
               copy_from: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, L, V]`` logits over compact ids; position ``l`` predicts ``ids[:, l]``."""
        start = torch.full_like(ids[:, :1], PAD)
        decoder_ids = torch.cat([start, ids[:, :-1] + OFFSET], dim=1)
        out = self.t5(input_ids=text + OFFSET * (text_mask > 0), attention_mask=text_mask,
                      decoder_input_ids=decoder_ids, use_cache=False)
        logits = out.logits[..., OFFSET:]
        if copy_from is not None:
            logits = logits.masked_fill(~self.allowed(copy_from).unsqueeze(1), float("-inf"))
        return logits

    def supervised_loss(self, text: torch.Tensor, text_mask: torch.Tensor, ids: torch.Tensor,
                        copy_from: torch.Tensor | None = None) -> torch.Tensor:
        """Mean token cross-entropy over each ID's tokens and its first ``[END]``."""
        if copy_from is not None:  # a target piece is always allowed
            copy_from = torch.cat([copy_from, ids], dim=1)
        logits = self.logits(text, text_mask, ids, copy_from)
        ce = F.cross_entropy(logits.float().flatten(0, 1), ids.flatten(), reduction="none").view(ids.shape)
        counted = id_positions(ids)
        return (ce * counted).sum() / counted.sum().clamp(min=1)

    def soft_tokens(self, text: torch.Tensor, text_mask: torch.Tensor, ids: torch.Tensor,
                    copy_from: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, L, V]`` softmax over the vocabulary at every position of ``ids`` (Eq. 5's Logits_phi)."""
        if copy_from is not None:
            copy_from = torch.cat([copy_from, ids], dim=1)
        return F.softmax(self.logits(text, text_mask, ids, copy_from).float(), dim=-1)

    # ------------------------------------------------------------------ diverse beam search
    @torch.no_grad()
    def diverse_ids(self, text: torch.Tensor, text_mask: torch.Tensor, groups: int, penalty: float,
                    min_len: int, max_len: int, copy_from: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, groups, max_len]`` compact ids, ``[END]``-padded; each row has ``min_len`` to
        ``max_len - 1`` tokens before its ``[END]``.  An ID never opens with a word continuation
        (``##`` piece) and never repeats a piece (a from-scratch generator otherwise loops, "80 80 80").

        Group ``g`` picks, at step ``t``, the token maximising ``log p - penalty * (number of
        unfinished groups < g that picked it at step t)``; group 0 is greedy decoding.  ``[UNK]``
        is never written.
        """
        from transformers import DynamicCache, EncoderDecoderCache

        if not 1 <= min_len < max_len:
            raise ValueError(f"diverse_ids: need 1 <= min_len < max_len, got [{min_len}, {max_len})")
        was_training = self.training
        self.eval()
        n = text.shape[0]
        device = text.device
        hidden = self.t5.encoder(input_ids=text + OFFSET * (text_mask > 0), attention_mask=text_mask).last_hidden_state
        hidden = hidden.repeat_interleave(groups, dim=0)
        mask = text_mask.repeat_interleave(groups, dim=0)
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        allowed = self.allowed(copy_from).unsqueeze(1) if copy_from is not None else None
        written = torch.zeros(n, groups, self.vocab_size, dtype=torch.bool, device=device)
        out = torch.full((n, groups, max_len), END, dtype=torch.long, device=device)
        done = torch.zeros(n, groups, dtype=torch.bool, device=device)
        step_input = torch.full((n * groups, 1), PAD, dtype=torch.long, device=device)
        for t in range(max_len):
            logits = self.t5(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=step_input,
                             use_cache=True, **{cache_argument(self.t5): cache}).logits[:, -1, OFFSET:]
            # Each group keeps one beam, so its choice is an argmax over one row, where log p and the
            # raw logits differ by a constant: the softmax (a [rows, V] pass) is skipped.
            score = logits.float().view(n, groups, -1)
            score[..., UNK] = float("-inf")
            if allowed is not None:
                score.masked_fill_(~allowed, float("-inf"))
            if t == 0:
                score.masked_fill_(self.continuation, float("-inf"))
            score.masked_fill_(written, float("-inf"))
            if t < min_len:
                score[..., END] = float("-inf")
            if t == max_len - 1:  # the last slot holds [END]
                score[...] = float("-inf")
                score[..., END] = 0.0
            counts = torch.zeros(n, score.shape[-1], device=device)
            chosen = torch.empty(n, groups, dtype=torch.long, device=device)
            for g in range(groups):
                token = (score[:, g] - penalty * counts).argmax(dim=-1)
                token = torch.where(done[:, g], torch.full_like(token, END), token)
                chosen[:, g] = token
                counts.scatter_add_(1, token.unsqueeze(1), (~done[:, g]).float().unsqueeze(1))
            out[:, :, t] = chosen
            written.scatter_(2, chosen.unsqueeze(2), True)
            written[..., END] = False
            done |= chosen == END
            step_input = (chosen + OFFSET).view(n * groups, 1)
            if bool(done.all()):
                break
        self.train(was_training)
        return out


def id_positions(ids: torch.Tensor, end: int | None = END) -> torch.Tensor:
    """Float mask of an ID row's tokens and its first ``end`` marker (what Eq. 4 sums over, and
    what the ``trie-beam`` decoder scores: the core's :func:`mtrec.builtins.generative.id_positions`).

    ``end=None``: fixed-length IDs without an end marker (e.g. semantic IDs, where token 0 is a
    real code): every position counts."""
    return core_id_positions(ids, end).float()
