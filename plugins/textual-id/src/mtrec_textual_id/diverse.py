"""Algorithm 1 of IDGenRec (§2.3): unique IDs by diverse beam search with an escalating penalty.

For each item: generate ``k`` IDs at diversity penalty ``λ`` (start 1) within the first length
range; take the first ID no earlier item holds.  If all ``k`` are taken, ``λ += 1``; past the
maximum penalty, move to the next (longer) length range and reset ``λ`` to 1.

Batched here, round by round, instead of item by item: round ``(range, λ)`` generates candidates
for every item still without an ID and assigns them in item order.  The first round first tries
group 0 alone (greedy decoding, the first of the ``k`` DBS candidates: its penalty term is empty)
and only the items whose greedy ID is taken pay for all ``k`` groups.  Every item still gets the
first free ID among its candidates of the lowest ``(range, λ)`` that has one; the only difference
from the sequential loop is which item of a colliding pair reaches a round first.  Algorithm 1
keeps ``λ`` across items (it is initialised once, before the loop); the text ("this increase in
penalty continues until a unique ID is produced") and the reported share of items needing "a
second attempt" imply a reset per item, which is what is done.

Items that exhaust every range (never seen in practice) get their best candidate with its last
token(s) replaced by digit pieces that make it unique, so the result is always a set of unique IDs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from mtrec_textual_id.vocab import END

# generate(items [M], groups, penalty, min_len, max_len) -> [M, groups, max_len] compact ids
Generate = Callable[[np.ndarray, int, float, int, int], torch.Tensor]


@dataclass
class AssignResult:
    ids: dict[int, tuple[int, ...]]  # item -> ID tokens (no [END])
    attempts: dict[int, tuple[int, int]]  # item -> (range index, penalty) that gave its ID
    fallback: list[int] = field(default_factory=list)

    def stats(self, n: int) -> dict[str, float]:
        n = max(n, 1)
        second = sum(1 for r, lam in self.attempts.values() if (r, lam) != (0, 1))
        longer = sum(1 for r, _ in self.attempts.values() if r > 0)
        lengths = [len(t) for t in self.ids.values()]
        return {
            "second_attempt_share": round(second / n, 4),
            "longer_id_share": round(longer / n, 4),
            "fallback_share": round(len(self.fallback) / n, 4),
            "mean_id_length": round(float(np.mean(lengths)) if lengths else 0.0, 3),
            "max_id_length": int(max(lengths) if lengths else 0),
        }


def rows_to_ids(rows: torch.Tensor) -> list[list[tuple[int, ...]]]:
    """``[M, k, L]`` END-padded rows -> per item, its ``k`` candidate token tuples."""
    out = []
    for item_rows in rows.tolist():
        cands = []
        for row in item_rows:
            cut = row.index(END) if END in row else len(row)
            cands.append(tuple(row[:cut]))
        out.append(cands)
    return out


def assign_unique_ids(items: Sequence[int], generate: Generate, groups: int, max_penalty: int,
                      length_ranges: Sequence[tuple[int, int]], digit_tokens: Sequence[int],
                      used: set[tuple[int, ...]] | None = None) -> AssignResult:
    """Unique IDs for ``items`` (in this order), following Algorithm 1 (see the module docstring)."""
    used = set() if used is None else used
    result = AssignResult({}, {})
    pending = np.asarray(list(items), dtype=np.int64)
    best: dict[int, tuple[int, ...]] = {}

    def take(cands_per_item: list[list[tuple[int, ...]]], items_now: np.ndarray, r: int, lam: int) -> np.ndarray:
        left = []
        for item, cands in zip(items_now.tolist(), cands_per_item):
            best.setdefault(item, cands[0])
            for cand in cands:
                if cand and cand not in used:
                    used.add(cand)
                    result.ids[item] = cand
                    result.attempts[item] = (r, lam)
                    break
            else:
                left.append(item)
        return np.asarray(left, dtype=np.int64)

    for r, (lo, hi) in enumerate(length_ranges):
        for lam in range(1, max_penalty + 1):
            if pending.size == 0:
                break
            if r == 0 and lam == 1:  # greedy first: group 0 of the DBS candidates
                pending = take(rows_to_ids(generate(pending, 1, 0.0, lo, hi)), pending, r, lam)
                if pending.size == 0:
                    break
            pending = take(rows_to_ids(generate(pending, groups, float(lam), lo, hi)), pending, r, lam)
    max_tokens = max(hi for _, hi in length_ranges) - 1
    for item in pending.tolist():  # last resort: digits replace the tail of the best candidate
        base = list(best.get(item, ()))[: max_tokens]
        for k in range(1, 10 ** 6):
            digits = [digit_tokens[int(c)] for c in str(k)]
            cand = tuple((base[: max_tokens - len(digits)] + digits))
            if cand not in used:
                used.add(cand)
                result.ids[item] = cand
                result.attempts[item] = (len(length_ranges), 0)
                result.fallback.append(item)
                break
    return result
