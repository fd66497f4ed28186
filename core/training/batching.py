"""How one epoch's order of training examples is cut into batches.

Plain: consecutive slices of the (seeded, shuffled) order.  Length-bucketed, for a model that
tells how long each example is (``example_lengths(tensors) -> LongTensor[n]``, the number of real,
non-padding input positions): the order is split into windows of ``batch_size * WINDOW_BATCHES``
consecutive examples, each window is stable-sorted by length and cut into batches, and the
batches' order is shuffled, so that a batch holds examples of similar length (little padding for
a model that trims it) while short and long batches still interleave over the epoch.

Either way every example of ``order`` is in exactly one batch, and there are
``ceil(len(order) / batch_size)`` batches (every window but the last is a whole number of
batches), which DDP needs: every rank takes as many steps as the others.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Batches per sorting window: long enough to group similar lengths, short enough to stay random.
WINDOW_BATCHES = 50


def example_lengths(model: nn.Module, tensors: dict[str, Tensor]) -> Tensor | None:
    """The model's per-example input lengths (``model.example_lengths``), or None when it has none."""
    lengths_of = getattr(model, "example_lengths", None)
    if not callable(lengths_of):
        return None
    lengths = torch.as_tensor(lengths_of(tensors))
    n = next(iter(tensors.values())).shape[0]
    if lengths.shape != (n,):
        raise ValueError(f"{type(model).__name__}.example_lengths returned shape {tuple(lengths.shape)}, expected ({n},)")
    return lengths


def epoch_batches(model: nn.Module, tensors: dict[str, Tensor], order: Tensor, batch_size: int,
                  generator: torch.Generator, *, lengths: Tensor | None = None, bucket: bool = True) -> list[Tensor]:
    """The batches (index tensors into ``tensors``) of one epoch whose example order is ``order``.

    Length-bucketed when ``bucket`` and the model defines ``example_lengths`` (``lengths``: its
    result, computed once per stage by the caller; else computed here), otherwise consecutive
    slices of ``order``.  Deterministic given ``generator``'s state (drawn from only when bucketing).
    """
    if not bucket:
        lengths = None
    elif lengths is None:
        lengths = example_lengths(model, tensors)
    if lengths is None:
        return [order[start : start + batch_size] for start in range(0, order.numel(), batch_size)]
    lengths = lengths.to(order.device)
    window = batch_size * WINDOW_BATCHES
    batches: list[Tensor] = []
    for start in range(0, order.numel(), window):
        chunk = order[start : start + window]
        chunk = chunk[torch.sort(lengths[chunk], stable=True).indices]
        batches.extend(chunk[i : i + batch_size] for i in range(0, chunk.numel(), batch_size))
    assert len(batches) == math.ceil(order.numel() / batch_size)
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def epoch_generator(seed: int, stage_index: int, epoch: int) -> torch.Generator:
    """The CPU generator that shuffles one epoch's batches: the same in a resumed run and on every rank."""
    return torch.Generator().manual_seed((seed * 1_000_003 + stage_index * 7_919 + epoch * 104_729) % (2**63 - 1))
