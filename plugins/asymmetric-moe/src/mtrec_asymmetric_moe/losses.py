"""The two loss functions of SyNCRec that do not depend on the model: BPR (Eq. 8-9) and SC-MIM
(Eq. 16-17).  Kept as plain functions so the tests can check them against hand-computed values."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr(pos: torch.Tensor, neg: torch.Tensor, on: str = "logits") -> torch.Tensor:
    """Per-example pairwise ranking loss ``-log sigma(P+ - P-)`` (Eq. 8; Rendle et al.).

    ``pos``/``neg`` are the dot products ``y . M(x)``.  ``on="logits"`` (default) compares them
    directly, as BPR does; ``on="sigmoid"`` first maps them to ``P = sigma(y . M(x))`` as Eq. 8
    writes it literally (the difference is then bounded in (-1, 1), see the README).
    """
    if on == "sigmoid":
        pos, neg = torch.sigmoid(pos), torch.sigmoid(neg)
    return -F.logsigmoid((pos - neg).float())


def sc_mim(single: torch.Tensor, cross: torch.Tensor, weight: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
    """SC-MIM loss of one domain (Eq. 16-17), the mean over the anchors of the batch.

    ``single``/``cross`` ``[n, r]`` are the pooled single- and cross-domain representations of n
    (user, window) rows of the domain; row i of both is the same user.  For the anchor
    ``cross[i]`` the positive is ``single[i]`` and the negatives are the single-domain
    representations of the *other users* in the batch; ``rho(U, V) = sigma(U^T W V)``.  As in the
    InfoNCE bound of Eq. 14 the positive is part of the normaliser, so the loss is
    ``-rho_ii + log sum_j exp rho_ji`` over j in {i} and the other users.
    """
    rho = torch.sigmoid(single @ weight @ cross.T)  # rho[j, i] = rho(single_j, cross_i)
    same_user = users.unsqueeze(1) == users.unsqueeze(0)
    eye = torch.eye(len(users), dtype=torch.bool, device=users.device)
    logits = rho.masked_fill(same_user & ~eye, float("-inf"))
    return (torch.logsumexp(logits, dim=0) - rho.diagonal()).mean()
