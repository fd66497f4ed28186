"""Warm start of the ID generator: learn to write each item's most salient words first.

IDGenRec starts its generator from a T5 fine-tuned on article tag generation; none is reachable
here, so a generator built from a config first learns a stand-in task of the same kind: for
every item, write its ``words`` highest-TF-IDF words (TF-IDF over the catalogue's texts, field
names such as ``title`` weigh ~0 because every text has them), in the order they appear in the
text (so "chi pro hair dryer" rather than "dryer chi hair pro"), as word pieces, cut to the first
length range.  Its first IDs are thus short keyword tags of the item, like the tag generator's.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import torch

from mtrec_textual_id.generator import IdGenerator
from mtrec_textual_id.vocab import END, UNK, PieceVocab

WORD = r"(?u)\b[^\W_][^\W_]+\b"  # two or more letters/digits, as sklearn's default


def salient_words(texts: Sequence[str], words: int,
                   keep: Callable[[list[str]], list[bool]] | None = None) -> list[list[str]]:
    """Per text, its top-``words`` TF-IDF words (ties: earlier first), in order of first appearance.

    ``keep(words) -> mask`` may rule words out (e.g. words with a piece outside the vocabulary)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=WORD, lowercase=True)
    matrix = vectorizer.fit_transform(texts).tocsr()
    vocab = list(vectorizer.get_feature_names_out())
    allowed = keep(vocab) if keep is not None else [True] * len(vocab)
    out = []
    for i, text in enumerate(texts):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        first: dict[str, int] = {}
        for pos, w in enumerate(re.findall(WORD, text.lower())):
            first.setdefault(w, pos)
        scored = sorted(((j, v) for j, v in zip(matrix.indices[lo:hi], matrix.data[lo:hi]) if allowed[j]),
                        key=lambda x: (-x[1], first.get(vocab[x[0]], 0)))
        top = [vocab[j] for j, _ in scored[:words]]
        out.append(sorted(top, key=lambda w: first.get(w, 0)))
    return out


def warm_targets(texts: Sequence[str], vocab: PieceVocab, words: int, max_tokens: int) -> torch.Tensor:
    """``[n, max_tokens + 1]`` compact ids: the salient words as pieces, then ``[END]`` padding.

    Only words whose every piece is in the vocabulary qualify (an ID never holds ``[UNK]``)."""
    pieces_of: dict[str, list[int]] = {}

    def keep(candidates: list[str]) -> list[bool]:
        for w, ids in zip(candidates, vocab.encode_many(candidates)):
            pieces_of[w] = ids
        return [bool(ids) and UNK not in ids for ids in (pieces_of[w] for w in candidates)]

    rows = torch.full((len(texts), max_tokens + 1), END, dtype=torch.long)
    for i, ws in enumerate(salient_words(texts, words, keep)):
        ids = [t for w in ws for t in pieces_of[w]][:max_tokens]
        if ids:
            rows[i, : len(ids)] = torch.as_tensor(ids)
    return rows


def train_supervised(generator: IdGenerator, text: torch.Tensor, text_mask: torch.Tensor, targets: torch.Tensor,
                     *, copy_from: torch.Tensor | None = None, epochs: int, lr: float, batch_size: int, seed: int,
                     progress: Callable[[int], object] | None = None, max_items: int | None = None) -> list[float]:
    """AdamW on :meth:`IdGenerator.supervised_loss`; returns each epoch's mean loss."""
    optimizer = torch.optim.AdamW(generator.parameters(), lr=lr, foreach=True)
    generator.train()
    g = torch.Generator().manual_seed(seed)
    n = text.shape[0]
    history = []
    bar = progress(epochs) if progress else None
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)[:max_items]
        total, steps = 0.0, 0
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size]
            loss = generator.supervised_loss(text[idx], text_mask[idx], targets[idx],
                                             None if copy_from is None else copy_from[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        history.append(total / max(steps, 1))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.3f}")
    if bar is not None:
        bar.close()
    generator.eval()
    return history
