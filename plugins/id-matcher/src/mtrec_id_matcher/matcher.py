"""The cross-domain ID matcher (CDIM, papers/idp.md §2.4): a sentence encoder tuned so that the
similarity of two items' text vectors reflects both their texts and their behaviour.

Losses (per anchor item ``i`` of a batch of ``N`` source items, ``s(a, b)`` = cosine / tau):

* Eq. 5, text:  ``-log e^{s(t_i, t'_i)} / sum_k e^{s(t_i, t'_k)}`` — two dropout views of the same
  text are a positive pair, the other items' second views are in-batch negatives (SimCSE);
* Eq. 6, behaviour: ``-log sum_{j in V_i} e^{s(t_i, t_j)} / (e^{s(t_i, t'_i)} + sum_{k != i, k not in V_i} e^{s(t_i, t'_k)})``
  — ``V_i`` are ``i``'s top-k most similar source items by pre-trained ID embedding; the
  denominator is Eq. 5's, without in-batch items that are themselves positives of ``i``;
* Eq. 7: the sum, averaged over the batch (``behavior_weight`` scales Eq. 6; 1 is the paper's sum).

Two matchers implement the same interface (``forward(items) -> unit vectors`` with dropout in
train mode, ``encode(items)`` without): :class:`FullMatcher` fine-tunes every weight of a
sentence-transformers model (the paper); :class:`HeadMatcher` keeps the sentence encoder frozen
and tunes an identity-initialised linear map on its cached item vectors (what fits a CPU).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


# --------------------------------------------------------------------------- losses


def contrastive_losses(
    anchor: torch.Tensor,
    view: torch.Tensor,
    positives: torch.Tensor | None,
    positive_valid: torch.Tensor | None,
    positive_in_batch: torch.Tensor | None,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor Eq. 5 and Eq. 6 losses, ``([N], [N])``.

    ``anchor``/``view``: ``[N, D]`` unit vectors of the two dropout views; ``positives``: ``[N, P, D]``
    unit vectors of behavioural positives with ``positive_valid`` ``[N, P]`` (False = padding);
    ``positive_in_batch`` ``[N, N]``: True where batch item ``k`` is a behavioural positive of ``i``
    (dropped from Eq. 6's denominator).  Anchors without a valid positive get a behaviour loss of 0.
    """
    logits = anchor @ view.T / temperature  # [N, N]; the diagonal is s(t_i, t'_i)
    log_denominator = torch.logsumexp(logits, dim=1)
    text = log_denominator - logits.diagonal()
    if positives is None:
        return text, torch.zeros_like(text)
    n = anchor.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=anchor.device)
    excluded = positive_in_batch & ~eye if positive_in_batch is not None else torch.zeros_like(eye)
    behavior_denominator = torch.logsumexp(logits.masked_fill(excluded, -math.inf), dim=1)
    pos_logits = torch.einsum("nd,npd->np", anchor, positives) / temperature
    pos_logits = pos_logits.masked_fill(~positive_valid, -math.inf)
    has_positive = positive_valid.any(dim=1)
    numerator = torch.logsumexp(pos_logits.masked_fill(~has_positive.unsqueeze(1), 0.0), dim=1)
    behavior = torch.where(has_positive, behavior_denominator - numerator, torch.zeros_like(text))
    return text, behavior


# --------------------------------------------------------------------------- matchers


class HeadMatcher(nn.Module):
    """Frozen sentence vectors ``base`` ``[n_items + 1, D]`` -> ``normalize(W dropout(x) + b)``.

    ``W`` starts at the identity and ``b`` at zero, so the untrained matcher is the sentence
    encoder itself, as the fine-tuned encoder of the paper starts from the pre-trained one.
    """

    def __init__(self, base: torch.Tensor, dropout: float) -> None:
        super().__init__()
        self.register_buffer("base", F.normalize(base.float(), dim=-1), persistent=False)
        dim = base.shape[1]
        self.linear = nn.Linear(dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
            self.linear.bias.zero_()
        self.drop = nn.Dropout(dropout)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(self.drop(self.base[items])), dim=-1)

    @torch.no_grad()
    def encode(self, items: torch.Tensor, batch_size: int = 4096, progress: bool = False) -> torch.Tensor:
        self.eval()
        return torch.cat([self(items[s : s + batch_size]) for s in range(0, items.numel(), batch_size)])


class FullMatcher(nn.Module):
    """A sentence-transformers model fine-tuned in full; its own dropout makes the two views."""

    def __init__(self, path: Path, texts: Sequence[str], max_tokens: int, device: torch.device) -> None:
        super().__init__()
        from sentence_transformers import SentenceTransformer

        # ``path`` is a local folder from mtrec.text.resolve_text_model: nothing is downloaded.
        self.st = SentenceTransformer(str(path), device=str(device), local_files_only=True)
        self.st.max_seq_length = max_tokens
        self.texts = [t if t else " " for t in texts]
        self.device_ = device

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        texts = [self.texts[i] for i in items.tolist()]
        prepare = getattr(self.st, "preprocess", None) or self.st.tokenize
        features = {k: v.to(self.device_) if torch.is_tensor(v) else v for k, v in prepare(texts).items()}
        return F.normalize(self.st(features)["sentence_embedding"], dim=-1)

    @torch.no_grad()
    def encode(self, items: torch.Tensor, batch_size: int = 128, progress: bool = False) -> torch.Tensor:
        self.eval()
        texts = [self.texts[i] for i in items.tolist()]
        out = self.st.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                             show_progress_bar=progress)
        return out.float()


# --------------------------------------------------------------------------- training


def fit_matcher(
    matcher: nn.Module,
    anchors: torch.Tensor,
    positives: torch.Tensor | None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    temperature: float,
    behavior_weight: float,
    positives_per_step: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Tune ``matcher`` with Eq. 7 over ``anchors`` ``[A]`` (item ids).

    ``positives`` ``[A, k]`` holds each anchor's behavioural positives (0 = none); ``None`` or
    ``behavior_weight == 0`` trains the text loss alone ("w/o BCL").  Each step encodes the anchors
    twice (two dropout views) and ``positives_per_step`` sampled positives per anchor (all k by
    default).  Returns the mean losses of the last epoch and the number of steps.
    """
    use_behavior = positives is not None and behavior_weight > 0
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in matcher.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps, last = 0, {"text": float("nan"), "behavior": float("nan")}
    n = anchors.numel()
    bar = tqdm(total=min(max_steps or 10**12, epochs * math.ceil(n / batch_size)), desc="matcher (CDIM)",
               unit="step", disable=not progress)
    for _ in range(epochs):
        matcher.train()
        order = torch.randperm(n, generator=generator)
        sums = {"text": 0.0, "behavior": 0.0}
        batches = 0
        for start in range(0, n, batch_size):
            if max_steps is not None and steps >= max_steps:
                break
            idx = order[start : start + batch_size]
            if idx.numel() < 2:
                continue  # a lone anchor has no in-batch negative
            items = anchors[idx]
            pos = pos_valid = in_batch = None
            if use_behavior:
                full = positives[idx]  # [B, k]
                pos = full
                if positives_per_step is not None and positives_per_step < full.shape[1]:
                    pick = torch.rand(full.shape, generator=generator).argsort(dim=1)[:, :positives_per_step]
                    pos = torch.gather(full, 1, pick)
                pos_valid = pos > 0
                in_batch = (full.unsqueeze(1) == items.view(1, -1, 1)).any(-1)  # [B, B]: items[k] in V_i
            count = items.numel()
            batch_items = torch.cat([items, items] + ([pos.flatten()] if pos is not None else []))
            vectors = matcher(batch_items.to(_device(matcher)))
            anchor, view = vectors[:count], vectors[count : 2 * count]
            pos_vec = vectors[2 * count :].view(count, -1, vectors.shape[1]) if pos is not None else None
            text, behavior = contrastive_losses(
                anchor, view, pos_vec,
                pos_valid.to(anchor.device) if pos_valid is not None else None,
                in_batch.to(anchor.device) if in_batch is not None else None,
                temperature,
            )
            loss = text.mean() + behavior_weight * behavior.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["text"] += float(text.mean().detach())
            sums["behavior"] += float(behavior.mean().detach())
            batches += 1
            steps += 1
            bar.update(1)
            bar.set_postfix(text=f"{sums['text'] / (batches or 1):.3f}", behavior=f"{sums['behavior'] / (batches or 1):.3f}")
        if batches:
            last = {k: v / batches for k, v in sums.items()}
        if max_steps is not None and steps >= max_steps:
            break
    bar.close()
    matcher.eval()
    return {"steps": steps, "last_epoch_text_loss": last["text"], "last_epoch_behavior_loss": last["behavior"]}


def _device(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_numpy(vectors: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(vectors.detach().float().cpu().numpy())
