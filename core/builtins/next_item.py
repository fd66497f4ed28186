"""What every ID-based next-item encoder shares: per-domain objectives, scoring and training windows.

An encoder that subclasses :class:`NextItemEncoder` writes only how a history becomes hidden states
(``sequence_output``); the rest -- every position of every training window predicting its next item,
the loss kept per domain (cross-entropy over the target domain's items, or BPR / BCE against
uniform negatives from it), the user representation at the last position and the dot-product scores
against ``item_embedding`` -- is the same for ``sasrec`` and ``gru4rec``, and lives here once.

A subclass sets ``params`` (with ``view``, ``loss`` and ``negatives``), ``item_embedding``,
``domain_names`` and the :class:`~mtrec.builtins.domain_items.DomainItemTables` buffers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from mtrec.builtins.domain_items import registered_domain_items
from mtrec.components import Encoder
from mtrec.data.views import next_item_windows, train_sequences
from mtrec.training.stage import DomainLoss

if TYPE_CHECKING:
    from mtrec.components import Run


class NextItemEncoder(Encoder):
    family = "discriminative"

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` left-padded item ids -> ``[B, T, H]`` hidden states (position ``t`` has read
        the history up to and including ``t``)."""
        raise NotImplementedError

    def domain_items(self, d: int) -> torch.Tensor:
        return registered_domain_items(self, d)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        history = batch["history_cross"] if self.params.view == "cross" else batch["history"]
        return self.sequence_output(history)[:, -1]

    def item_representation(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_embedding(items)

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        user = self.user_embedding(batch)
        items = self.item_embedding(candidates)
        if candidates.dim() == 1:
            return user @ items.T
        return torch.einsum("bh,bch->bc", user, items)

    def train_tensors(self, run: "Run", domains: list[int]) -> dict[str, torch.Tensor]:
        seqs = train_sequences(run.dataset, domains, self.params.view)
        inputs, targets = next_item_windows(seqs, run.config.data.max_len)
        return {"input": torch.as_tensor(inputs), "target": torch.as_tensor(targets)}

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        hidden = self.sequence_output(batch["input"])
        target = batch["target"]
        valid = target > 0
        hidden, target = hidden[valid], target[valid]
        domain = self.item_domain[target]
        losses, counts = {}, {}
        for d in torch.unique(domain).tolist():
            sel = domain == d
            h, t = hidden[sel], target[sel]
            items = self.domain_items(d)
            if self.params.loss == "ce":
                logits = h @ self.item_embedding(items).T
                loss = F.cross_entropy(logits.float(), self.item_local[t])
            else:
                loss = self._sampled_loss(h, t, items)
            losses[self.domain_names[d]] = loss
            counts[self.domain_names[d]] = int(t.numel())
        return DomainLoss(losses, counts)

    def _sampled_loss(self, h: torch.Tensor, t: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """BPR or BCE of each target against uniform negatives from its domain.  Unlike the original
        SASRec code, items of the user's history may be drawn (as MAN's negatives may): a draw per
        user would need the history here, and on catalogues of thousands it rarely matters."""
        k = self.params.negatives
        shape = t.shape if k == 1 else (*t.shape, k)  # k == 1 keeps the draw of earlier releases
        neg = items[torch.randint(items.numel(), shape, device=t.device)].view(t.numel(), k)
        pos_s = (h * self.item_embedding(t)).sum(-1).float()
        neg_s = torch.einsum("nh,nkh->nk", h, self.item_embedding(neg)).float()
        if self.params.loss == "bpr":
            return -F.logsigmoid(pos_s.unsqueeze(1) - neg_s).mean()
        return -(F.logsigmoid(pos_s).mean() + F.logsigmoid(-neg_s).sum(1).mean())
