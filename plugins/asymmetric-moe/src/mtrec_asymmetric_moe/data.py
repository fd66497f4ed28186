"""Training windows that hold both sequence views of the same user (papers/syncrec.md §3, §4.1).

Definition 1 of the paper splits the cross-domain sequence X into the single-domain sequences
X^d.  Each training example here is one window of a user's cross-domain training sequence (at
most ``max_len + 1`` items, cut from the end like the core's ``next_item_windows`` so every
training item is a target once) and the split of *that window* into its single-domain
subsequences, so the two views cover exactly the same interactions:

* ``input`` / ``target`` ``[N, T]``: the cross-domain view, next item of any domain;
* ``single_input`` / ``single_target`` ``[N, D, T]``: for each domain d (all dataset domains,
  empty rows where the window has fewer than two items of d), the window's items of d and the
  next item of d, left-padded;
* ``single_pos`` ``[N, D, T]``: for every single-view input position, the position in ``input``
  that holds the same interaction (-1 at padding) -- what SC-MIM pairs across the views;
* ``user`` ``[N]``: so SC-MIM never takes a user's other window as a negative.
"""

from __future__ import annotations

import numpy as np

from mtrec.data.model import TRAIN, MultiDomainDataset


def user_train_sequences(dataset: MultiDomainDataset, domains: list[int]) -> list[tuple[int, np.ndarray]]:
    """(user, chronological training items of ``domains``) for every user who has any."""
    keep = np.isin(dataset.inter_domain, domains) & (dataset.inter_role == TRAIN)
    out = []
    for u in range(dataset.n_users):
        lo, hi = dataset.user_offsets[u], dataset.user_offsets[u + 1]
        items = dataset.inter_item[lo:hi][keep[lo:hi]]
        if items.size >= 2:
            out.append((u, items))
    return out


def two_view_windows(
    sequences: list[tuple[int, np.ndarray]], item_domain: np.ndarray, n_domains: int, max_len: int
) -> dict[str, np.ndarray]:
    """Cut each user's cross-domain sequence into windows and split each window by domain."""
    rows: list[tuple[int, np.ndarray]] = []
    for user, seq in sequences:
        end = len(seq) - 1
        while end > 0:
            start = max(0, end - max_len)
            rows.append((user, seq[start : end + 1]))
            end = start
    n, t = len(rows), max_len
    out = {
        "input": np.zeros((n, t), np.int64),
        "target": np.zeros((n, t), np.int64),
        "single_input": np.zeros((n, n_domains, t), np.int64),
        "single_target": np.zeros((n, n_domains, t), np.int64),
        "single_pos": np.full((n, n_domains, t), -1, np.int64),
        "user": np.zeros(n, np.int64),
    }
    for i, (user, window) in enumerate(rows):
        length = len(window) - 1  # number of inputs (and targets) of the cross view
        shift = t - length  # left padding of the cross view
        out["user"][i] = user
        out["input"][i, shift:] = window[:-1]
        out["target"][i, shift:] = window[1:]
        doms = item_domain[window]
        for d in np.unique(doms):
            where = np.flatnonzero(doms == d)
            if where.size < 2:
                continue
            k = where.size - 1
            out["single_input"][i, d, t - k :] = window[where[:-1]]
            out["single_target"][i, d, t - k :] = window[where[1:]]
            out["single_pos"][i, d, t - k :] = where[:-1] + shift
    return out
