"""Single-domain and cross-domain sequence views, as padded numpy arrays.

Honesty rules of the split, shared by every model:

* training sequences hold only ``TRAIN`` interactions (no domain's validation or test target);
* a validation example's history is every earlier interaction except test targets;
* a test example's history is every earlier interaction.

Histories are left-padded with 0 and keep the most recent ``max_len`` items.
"""

from __future__ import annotations

import numpy as np

from mtrec.data.model import SPLIT_ROLES, TEST, TRAIN, MultiDomainDataset


def train_sequences(dataset: MultiDomainDataset, domains: list[int], view: str = "single") -> list[np.ndarray]:
    """Training-role items per user (``cross``) or per (user, domain) (``single``), chronological."""
    keep_domain = np.isin(dataset.inter_domain, domains)
    keep = keep_domain & (dataset.inter_role == TRAIN)
    out: list[np.ndarray] = []
    offsets = dataset.user_offsets
    for u in range(dataset.n_users):
        lo, hi = offsets[u], offsets[u + 1]
        mask = keep[lo:hi]
        if not mask.any():
            continue
        items = dataset.inter_item[lo:hi][mask]
        if view == "cross":
            out.append(items)
        else:
            doms = dataset.inter_domain[lo:hi][mask]
            for d in np.unique(doms):
                out.append(items[doms == d])
    return out


def next_item_windows(sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets ``[N, max_len]`` (left-padded) covering every position once.

    A sequence with more than ``max_len`` targets is cut into windows from its end, so every
    training item is predicted exactly once.
    """
    inputs, targets = [], []
    for seq in sequences:
        n_targets = len(seq) - 1
        end = n_targets
        while end > 0:
            start = max(0, end - max_len)
            inputs.append(seq[start:end])
            targets.append(seq[start + 1 : end + 1])
            end = start
    return pad_left(inputs, max_len), pad_left(targets, max_len)


def pad_left(rows: list[np.ndarray], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        row = row[-width:]
        if len(row):
            out[i, width - len(row) :] = row
    return out


def eval_examples(
    dataset: MultiDomainDataset,
    split: str,
    domains: list[int],
    max_len: int,
    *,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Evaluation examples of ``split`` ("valid" or "test") for the given domains.

    Returns ``history`` (single-domain view), ``history_cross`` (cross-domain view), ``target``,
    ``domain`` and ``user``, sorted by (domain, user).  ``max_users`` keeps a seeded sample of
    that many examples per domain (tiny profiles only; reported numbers use every user).
    """
    role = SPLIT_ROLES[split]
    is_target = (dataset.inter_role == role) & np.isin(dataset.inter_domain, domains)
    positions = np.flatnonzero(is_target)
    if max_users is not None:
        rng = np.random.default_rng(seed)
        picked = []
        for d in domains:
            pos_d = positions[dataset.inter_domain[positions] == d]
            if pos_d.size > max_users:
                pos_d = np.sort(rng.choice(pos_d, size=max_users, replace=False))
            picked.append(pos_d)
        positions = np.sort(np.concatenate(picked)) if picked else positions
    users = dataset.inter_user[positions]
    hist_single, hist_cross = [], []
    allowed_roles = dataset.inter_role != TEST if role != TEST else np.ones_like(dataset.inter_role, dtype=bool)
    for p, u in zip(positions, users):
        lo = dataset.user_offsets[u]
        before = slice(lo, p)
        mask = allowed_roles[before]
        items = dataset.inter_item[before][mask]
        doms = dataset.inter_domain[before][mask]
        hist_cross.append(items[-max_len:])
        hist_single.append(items[doms == dataset.inter_domain[p]][-max_len:])
    domain = dataset.inter_domain[positions]
    order = np.lexsort((users, domain))
    return {
        "history": pad_left(hist_single, max_len)[order],
        "history_cross": pad_left(hist_cross, max_len)[order],
        "target": dataset.inter_item[positions][order],
        "domain": domain[order],
        "user": users[order],
    }


def user_items(dataset: MultiDomainDataset, users: np.ndarray) -> list[np.ndarray]:
    """All items each user interacted with (any role): what sampled negatives must avoid."""
    return [dataset.user_sequence(int(u)) for u in users]
