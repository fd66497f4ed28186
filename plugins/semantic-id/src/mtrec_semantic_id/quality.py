"""How good a semantic identifier is: neighbour agreement and the degeneracy check.

* :func:`neighbour_agreement`: for each (sampled) item, the share of its ``k`` nearest items of the
  same domain by cosine similarity of the text embeddings that got its level-1 code.  Codes that
  follow semantics score high; codes that ignore the text score the *chance level*, the share of
  the domain's other items that have the item's code.  Chance is high when a few codes hold most
  items, so read the two together: a degenerate identifier "agrees" with everything.
* :func:`degeneracy`: the reasons (usage, perplexity, collisions) why an identifier is too
  degenerate to use, judged against what a catalogue of its size can reach (:class:`Thresholds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 10
SAMPLE = 5000
BLOCK = 1 << 24  # similarity entries per block (64 MB of float32), whatever the domain's size


def neighbour_agreement(
    embeddings: np.ndarray,
    item_domain: np.ndarray,
    first_codes: np.ndarray,
    *,
    k: int = NEIGHBOURS,
    sample: int = SAMPLE,
    seed: int = 0,
) -> tuple[float, dict[int, float], float]:
    """(overall, per domain, chance) share of each item's ``k`` nearest same-domain texts sharing its level-1 code.

    All arrays have ``n_items + 1`` rows (row 0, padding, is ignored).  Neighbours are by cosine
    similarity within the item's domain, the item itself excluded; a domain with fewer than ``k + 1``
    items uses all its other items; a domain of one item has none and is skipped.  At most
    ``sample`` items (a seeded uniform sample) are scored.  The overall value is the mean over
    scored items, so domains weigh by their size.  Cost: ``sample x domain size x D`` multiply-adds
    (under a second for the bundled 18.7k items).  ``chance`` is the same mean of what random
    neighbours would score: the share of the item's domain (itself excluded) that has its code.
    """
    emb = np.asarray(embeddings, dtype=np.float32)[1:]
    dom = np.asarray(item_domain, dtype=np.int64)[1:]
    codes = np.asarray(first_codes, dtype=np.int64)[1:]
    n = emb.shape[0]
    if n == 0:
        return 0.0, {}, 0.0
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = emb / np.where(norms > 0, norms, 1.0)
    scored = np.arange(n)
    if n > sample:
        scored = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    shares = np.full(n, np.nan)
    chance = np.full(n, np.nan)
    for d in np.unique(dom):
        members = np.flatnonzero(dom == d)
        kk = min(k, members.size - 1)
        if kk < 1:
            continue
        queries = scored[dom[scored] == d]
        _, inverse, counts = np.unique(codes[members], return_inverse=True, return_counts=True)
        chance[members] = (counts[inverse.reshape(-1)] - 1) / (members.size - 1)
        position = np.searchsorted(members, queries)  # where each query sits among its domain's items
        rows = max(1, BLOCK // members.size)
        for start in range(0, queries.size, rows):
            q, pos = queries[start : start + rows], position[start : start + rows]
            sim = unit[q] @ unit[members].T
            sim[np.arange(q.size), pos] = -np.inf  # never one's own neighbour
            top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
            shares[q] = (codes[members[top]] == codes[q, None]).mean(1)
    valid = ~np.isnan(shares)
    per_domain = {int(d): float(shares[valid & (dom == d)].mean()) for d in np.unique(dom[valid])}
    if not valid.any():
        return 0.0, per_domain, 0.0
    return float(shares[valid].mean()), per_domain, float(chance[valid].mean())


@dataclass(frozen=True)
class Thresholds:
    """When an identifier counts as degenerate.

    Level-1 expectations scale with what the catalogue can fill: ``capacity = min(N, n / items_per_code)``
    codes (a catalogue of 500 items cannot spread over 256 first-level codes with several items
    each).  Collision limits apply only when the code space is much larger than the catalogue
    (``N ** L >= collision_space * n``); below that collisions are the layout's, not the fit's.
    """

    items_per_code: float = 4.0
    min_usage: float = 0.5  # level-1 codes used >= min_usage * capacity
    min_perplexity: float = 0.25  # level-1 perplexity >= min_perplexity * capacity
    max_collision_rate: float = 0.3
    max_group: int = 32  # the disambiguation level would need more tokens than this
    collision_space: float = 16.0


DEFAULT_THRESHOLDS = Thresholds()


def level_one_capacity(n_items: int, codebook_size: int, t: Thresholds = DEFAULT_THRESHOLDS) -> float:
    return min(float(codebook_size), n_items / t.items_per_code)


def degeneracy(
    groups: list[tuple[str, int, float, float]],
    *,
    codebook_size: int,
    levels: int,
    n_items: int,
    collision_rate: float,
    max_group: int,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> list[str]:
    """Why the identifier is degenerate (empty: it is not).

    ``groups`` holds one ``(label, items, level-1 usage, level-1 perplexity)`` per codebook (one
    for shared codebooks, one per domain otherwise); usage is the share of the ``N`` codes used.
    """
    reasons = []
    for label, items, usage, perplexity in groups:
        capacity = level_one_capacity(items, codebook_size, t)
        if items < 2 or capacity < 2:
            continue
        where = f" ({label})" if label else ""
        used = usage * codebook_size
        if used < t.min_usage * capacity:
            reasons.append(
                f"level-1 usage{where} {usage:.1%} ({used:.0f} of {codebook_size} codes; expected >= "
                f"{math.ceil(t.min_usage * capacity)} for {items} items)"
            )
        if perplexity < t.min_perplexity * capacity:
            reasons.append(
                f"level-1 perplexity{where} {perplexity:.0f} (expected >= {math.ceil(t.min_perplexity * capacity)})"
            )
    if levels * math.log(codebook_size) >= math.log(t.collision_space * max(n_items, 1)):
        if collision_rate > t.max_collision_rate:
            reasons.append(f"{collision_rate:.0%} of items collide (limit {t.max_collision_rate:.0%})")
        if max_group > t.max_group:
            reasons.append(f"largest group of identical codes {max_group} items (limit {t.max_group})")
    return reasons
