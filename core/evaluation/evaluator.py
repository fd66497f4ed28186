"""Score evaluation examples with a decoder and aggregate metrics per domain.

Protocols:

* ``full``: every item of the target domain is a candidate (the default; the only protocol whose
  numbers are compared);
* ``sampled``: the target plus N negatives drawn uniformly, without replacement, from the domain's
  items the user never interacted with; seeded, so every model sees the same candidates.

The average over domains is user-weighted: the mean over all examples of all domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mtrec.components import Decoder
from mtrec.data.model import MultiDomainDataset
from mtrec.evaluation.metrics import group_auc, metric_values, pooled_auc, ranks_from_scores, ranks_from_topk
from mtrec.training.distributed import all_gather_objects, shard

AVERAGE = "average"


@dataclass
class EvalReport:
    split: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # domain -> metric -> value
    counts: dict[str, int] = field(default_factory=dict)  # domain -> examples

    def get(self, metric: str, domain: str = AVERAGE) -> float:
        return self.metrics[domain][metric]

    def flat(self) -> dict[str, float]:
        return {f"{self.split}/{d}/{m}": v for d, row in self.metrics.items() for m, v in row.items()}

    def rows(self, stage: str, step: int | None = None) -> list[dict]:
        """Registry rows: one per (domain, metric)."""
        out = []
        for domain, row in self.metrics.items():
            for metric, value in row.items():
                name, _, k = metric.partition("@")
                out.append(
                    {"stage": stage, "split": self.split, "domain": domain, "name": name,
                     "k": int(k) if k else None, "value": float(value), "step": step}
                )
        return out


def sample_negatives(
    dataset: MultiDomainDataset, examples: dict[str, np.ndarray], n: int, seed: int
) -> np.ndarray:
    """``[E, 1 + n]`` candidates: the target first, then n seeded negatives per example."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(examples["target"]), n + 1), dtype=np.int64)
    for i, (target, domain, user) in enumerate(zip(examples["target"], examples["domain"], examples["user"])):
        pool = dataset.domain_items[domain]
        seen = set(dataset.user_sequence(int(user)).tolist())
        available = pool.size - len(seen) + int((dataset.item_domain[list(seen)] != domain).sum())
        if available < n:
            raise ValueError(
                f"domain {dataset.domains[domain]} has fewer than {n} items a user has not seen; "
                "lower evaluation.negatives"
            )
        chosen: list[int] = []
        taken: set[int] = set()
        while len(chosen) < n:
            for item in rng.choice(pool, size=2 * n, replace=True).tolist():
                if item not in seen and item not in taken:
                    taken.add(item)
                    chosen.append(item)
                    if len(chosen) == n:
                        break
        out[i, 0] = target
        out[i, 1:] = chosen
    return out


@torch.no_grad()
def evaluate(
    dataset: MultiDomainDataset,
    models: dict[int, nn.Module],
    decoder: Decoder,
    examples: dict[str, np.ndarray],
    *,
    split: str,
    ks: list[int],
    protocol: str = "full",
    negatives: int = 99,
    batch_size: int = 512,
    device: torch.device = torch.device("cpu"),
    seed: int = 0,
    filter_history: bool = False,
    progress: bool = True,
    autocast: bool = False,
) -> EvalReport:
    ks = sorted(set(ks))
    kmax = max(ks)
    sampled = None
    if protocol == "sampled":
        sampled = sample_negatives(dataset, examples, negatives, seed + (1 if split == "test" else 0))
    report = EvalReport(split)
    totals: dict[str, torch.Tensor] = {}
    n_total = 0
    domains = np.unique(examples["domain"])
    bar = tqdm(total=len(examples["target"]), desc=f"eval {split}", unit="user", disable=not progress, leave=False)
    for d in domains:
        d = int(d)
        model = models[d]
        model.eval()
        idx = np.flatnonzero(examples["domain"] == d)
        full_candidates = torch.as_tensor(dataset.domain_items[d], device=device)
        local = shard(idx)  # under torchrun: this rank's share of the domain's users
        per_example: dict[str, list[torch.Tensor]] = {}
        sampled_scores: list[np.ndarray] = []  # sampled protocol: [B, 1 + N] scores, target first
        for start in range(0, local.size, batch_size):
            sel = local[start : start + batch_size]
            batch = {k: torch.as_tensor(v[sel], device=device) for k, v in examples.items()}
            candidates = full_candidates if sampled is None else torch.as_tensor(sampled[sel], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                ranking = decoder.rank(model, batch, candidates, kmax)
            if ranking.scores is not None:
                scores = ranking.scores.float()
                if filter_history:
                    scores = _mask_history(scores, candidates, batch)
                ranks = ranks_from_scores(scores, candidates, batch["target"])
            else:
                topk = ranking.topk
                if filter_history:
                    topk = _drop_history(topk, batch)
                ranks = ranks_from_topk(topk, batch["target"])
            n_cand = None
            if sampled is not None:
                n_cand = torch.full_like(ranks, candidates.shape[1])
                if ranking.scores is not None:
                    sampled_scores.append(scores.cpu().double().numpy())
            for name, values in metric_values(ranks.cpu(), ks, None if n_cand is None else n_cand.cpu()).items():
                per_example.setdefault(name, []).append(values)
            bar.update(sel.size)
        sums = _gathered_sums(idx, local, per_example)
        if sampled is not None:  # every rank takes part in the gather, scored or not
            sums.update(_sampled_aucs(idx, local, sampled_scores, examples["user"]))
        name = dataset.domains[d]
        report.metrics[name] = {m: float(s / idx.size) for m, s in sums.items()}
        report.counts[name] = int(idx.size)
        for m, s in sums.items():
            totals[m] = totals.get(m, torch.zeros((), dtype=torch.float64)) + s
        n_total += idx.size
    bar.close()
    if n_total:
        report.metrics[AVERAGE] = {m: float(s / n_total) for m, s in totals.items()}
        report.counts[AVERAGE] = n_total
    return report


def _sampled_aucs(idx: np.ndarray, local: np.ndarray, scores: list[np.ndarray], users: np.ndarray) -> dict[str, torch.Tensor]:
    """Pooled AUC and GAUC of one domain under the sampled protocol, as sums over its examples.

    Neither is a mean of per-example values, so every rank's scores are gathered first; the value
    is returned times the example count so that the average over domains is user-weighted.
    """
    parts = all_gather_objects((local, np.concatenate(scores) if scores else None))
    if any(s is None and p.size for p, s in parts):  # a decoder that returns top-k lists, not scores
        return {}
    parts = [(p, s) for p, s in parts if s is not None]
    order = np.argsort(np.concatenate([p for p, _ in parts]), kind="stable")
    table = np.concatenate([s for _, s in parts])[order]
    values = {"pooled_auc": pooled_auc(table[:, 0], table[:, 1:]),
              "gauc": group_auc(table[:, 0], table[:, 1:], users[idx])}
    return {m: torch.tensor(v * idx.size, dtype=torch.float64) for m, v in values.items()}


def _gathered_sums(idx: np.ndarray, local: np.ndarray, per_example: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Each metric summed over every example of ``idx`` (sorted), whichever rank scored it.

    Every rank's per-example values are gathered and put back in example order before summing,
    so the sums are exactly those of one process scoring every example; an example scored twice
    or by no rank is a bug and stops the run.
    """
    mine = {m: torch.cat(v).numpy() for m, v in per_example.items()}
    parts = all_gather_objects((local, mine))
    names = list(dict.fromkeys(m for _, values in parts for m in values))
    full = {m: np.zeros(idx.size, dtype=np.float64) for m in names}
    seen = np.zeros(idx.size, dtype=np.int64)
    for part_idx, values in parts:
        pos = np.searchsorted(idx, part_idx)
        np.add.at(seen, pos, 1)
        for m, v in values.items():
            full[m][pos] = v
    if not np.all(seen == 1):
        raise RuntimeError(f"evaluation shards cover {int((seen == 0).sum())} examples 0 times and "
                           f"{int((seen > 1).sum())} more than once")
    return {m: torch.tensor(v.sum(), dtype=torch.float64) for m, v in full.items()}


def _mask_history(scores: torch.Tensor, candidates: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    history = torch.cat([batch["history"], batch["history_cross"]], dim=1)
    cand = candidates if candidates.dim() == 2 else candidates.unsqueeze(0).expand(scores.shape[0], -1)
    width = int(max(int(cand.max()), int(history.max()))) + 1
    seen = torch.zeros(scores.shape[0], width, dtype=torch.bool, device=scores.device)
    seen.scatter_(1, history, True)
    seen[:, 0] = False  # padding
    in_history = seen.gather(1, cand) & (cand != batch["target"].unsqueeze(1))
    return scores.masked_fill(in_history, float("-inf"))


def _drop_history(topk: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    history = torch.cat([batch["history"], batch["history_cross"]], dim=1)
    in_history = (topk.unsqueeze(2) == history.unsqueeze(1)).any(dim=2) & (topk != batch["target"].unsqueeze(1))
    # Stable compaction: kept items keep their order, dropped ones become padding at the end.
    order = torch.argsort(in_history.to(torch.int8), dim=1, stable=True)
    return torch.where(torch.gather(in_history, 1, order), torch.zeros_like(topk), torch.gather(topk, 1, order))
