"""Dropout whose mask is cheap to draw on a CPU (what ``seq2seq`` uses unless told otherwise).

On a CPU torch draws a dropout mask with ``bernoulli_``: one Mersenne-Twister number per element,
about 6.5 ns each on the 2-core machine of docs/benchmarks.md, and serial -- at the CPU T5's size
that was a quarter of a training step at two threads, more than any matrix product.
:class:`PackedDropout` draws 16 random bits per element in bulk from numpy's PCG64 (about 1 ns an
element, mask included), seeded from torch's default generator, so ``torch.manual_seed`` (and
``torch.random.fork_rng``) still fix every mask.  The keep probability is ``1 - p`` rounded to
1/65,536.  On any other device it is plain :func:`torch.nn.functional.dropout`, whose CUDA masks
are already cheap.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # a mask element is one uint16: dropped when below round(p * 65536)


def packed_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A CPU dropout mask of ``shape``: ``0`` where dropped, ``1 / (1 - p')`` where kept, with
    ``p' = round(p * 65536) / 65536``; drawn from a PCG64 stream seeded by torch's generator."""
    threshold = round(p * _LEVELS)
    numel = int(np.prod(shape, dtype=np.int64))
    seed = int(torch.randint(1 << 62, (1,)))
    bits = np.random.PCG64(seed).random_raw(-(-numel // 4)).view(np.uint16)[:numel]
    mask = (bits >= threshold).astype(np.float32)
    mask *= np.float32(_LEVELS / (_LEVELS - threshold))
    return torch.from_numpy(mask).view(shape).to(dtype)


class PackedDropout(nn.Module):
    """Drop-in for :class:`torch.nn.Dropout` (same ``p``, same train/eval behaviour) whose CPU
    masks come from :func:`packed_keep_mask`."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * packed_keep_mask(x.shape, self.p, x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_packed_dropout(model: nn.Module) -> int:
    """Replace every :class:`torch.nn.Dropout` inside ``model`` by a :class:`PackedDropout` of the
    same ``p``; returns how many were replaced.  Functional dropout (attention probabilities inside
    an attention kernel) is left as it is."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.Dropout]
    for parent, name, child in swaps:
        setattr(parent, name, PackedDropout(child.p))
    return len(swaps)
