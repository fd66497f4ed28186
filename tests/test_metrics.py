"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtrec.components import Ranking
from mtrec.data.model import MultiDomainDataset
from mtrec.evaluation.evaluator import evaluate, sample_negatives
from mtrec.evaluation.metrics import MISS, metric_values, ranks_from_scores, ranks_from_topk


def test_rank_counts_higher_scores_and_breaks_ties_by_item_id():
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1], [0.9, 0.5, 0.5, 0.1]])
    candidates = torch.tensor([10, 11, 12, 13])
    ranks = ranks_from_scores(scores, candidates, torch.tensor([12, 11]))
    # target 12: item 10 scores higher, item 11 ties with a smaller id -> 2 ahead
    # target 11: only item 10 is ahead (item 12 ties but has a larger id)
    assert ranks.tolist() == [2, 1]


def test_rank_with_per_example_candidates_and_missing_target():
    scores = torch.tensor([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    candidates = torch.tensor([[5, 6, 7], [5, 6, 7]])
    ranks = ranks_from_scores(scores, candidates, torch.tensor([5, 9]))
    assert ranks.tolist() == [2, MISS]


def test_metric_values_hand_computed():
    values = metric_values(torch.tensor([0, 2, MISS]), ks=[1, 3])
    assert values["recall@1"].tolist() == [1.0, 0.0, 0.0]
    assert values["recall@3"].tolist() == [1.0, 1.0, 0.0]
    assert values["ndcg@3"][0].item() == pytest.approx(1.0)
    assert values["ndcg@3"][1].item() == pytest.approx(1 / math.log2(4))  # 0.5
    assert values["ndcg@3"][2].item() == 0.0
    assert values["mrr"].tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_auc_for_sampled_candidates():
    values = metric_values(torch.tensor([2, 0]), ks=[1], n_candidates=torch.tensor([4, 4]))
    assert values["auc"].tolist() == pytest.approx([1 - 2 / 3, 1.0])


def test_topk_ranks():
    topk = torch.tensor([[5, 7, 9], [5, 7, 9]])
    assert ranks_from_topk(topk, torch.tensor([9, 4])).tolist() == [2, MISS]


def _toy_dataset() -> MultiDomainDataset:
    # items 1,2,3 in domain A; 4,5 in domain B.  user 0 (A): 1 2 3; users 1-3 (B): 4 5 4 ...
    item_domain = np.array([-1, 0, 0, 0, 1, 1])
    seqs = [[1, 2, 3], [4, 5, 4], [5, 4, 5], [4, 4, 5]]
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    return MultiDomainDataset(
        name="toy", domains=["A", "B"], item_domain=item_domain, item_raw_id=[""] + list("abcde"),
        item_fields={"title": [""] + list("abcde")}, item_text=[""] + list("abcde"),
        user_raw_id=["u0", "u1", "u2", "u3"], user_offsets=offsets,
        inter_item=np.concatenate([np.array(s) for s in seqs]), inter_role=np.tile([0, 1, 2], 4).astype(np.int8),
    )


class _FixedScores:
    """Decoder that scores candidate item i with -i (smaller ids rank first)."""

    def rank(self, model, batch, candidates, k):
        cand = candidates if candidates.dim() == 2 else candidates.expand(batch["target"].shape[0], -1)
        return Ranking(scores=-cand.float())


def test_average_is_user_weighted():
    ds = _toy_dataset()
    examples = {
        "history": np.zeros((4, 2), dtype=np.int64), "history_cross": np.zeros((4, 2), dtype=np.int64),
        "target": np.array([1, 5, 5, 5]), "domain": np.array([0, 1, 1, 1]), "user": np.array([0, 1, 2, 3]),
    }
    model = torch.nn.Identity()
    report = evaluate(ds, {0: model, 1: model}, _FixedScores(), examples, split="test", ks=[1], progress=False)
    # A: target 1 ranks first -> recall@1 = 1;  B: target 5 is behind item 4 -> 0 for all three users
    assert report.get("recall@1", "A") == 1.0
    assert report.get("recall@1", "B") == 0.0
    assert report.get("recall@1") == pytest.approx(0.25)  # not the 0.5 of a plain mean over domains
    assert report.counts == {"A": 1, "B": 3, "average": 4}


def test_sampled_negatives_are_seeded_unseen_and_in_domain():
    ds = _toy_dataset()
    examples = {"target": np.array([3]), "domain": np.array([0]), "user": np.array([0])}
    with pytest.raises(ValueError, match="fewer than 1 items"):
        sample_negatives(ds, examples, 1, seed=0)  # user 0 has seen every item of domain A
    ds.item_domain = np.array([-1, 0, 0, 0, 0, 1])  # item 4 now in A, unseen by user 0
    ds.__dict__.pop("domain_items", None)
    first = sample_negatives(ds, examples, 1, seed=7)
    assert first.tolist() == [[3, 4]]
    assert np.array_equal(first, sample_negatives(ds, examples, 1, seed=7))


# ----------------------------------------------------------------------------- pooled AUC and GAUC

def test_pooled_auc_hand_computed():
    from mtrec.evaluation.metrics import pooled_auc

    # 0.9 beats 0.5, 0.1, 0.3 and ties 0.9 -> 3.5 of 4 pairs; 0.2 beats only 0.1 -> 1 of 4
    assert pooled_auc(np.array([0.9, 0.2]), np.array([[0.5, 0.1], [0.3, 0.9]])) == pytest.approx(4.5 / 8)


def test_group_auc_weights_groups_by_candidates():
    from mtrec.evaluation.metrics import group_auc

    pos, neg = np.array([0.9, 0.2]), np.array([[0.5, 0.1], [0.3, 0.9]])
    # two users: 1.0 (3 candidates) and 0.0 (3 candidates) -> 0.5, whereas pooling gives 0.5625
    assert group_auc(pos, neg, np.array([7, 8])) == pytest.approx(0.5)
    # one user with both examples: the within-group AUC is the pooled one
    assert group_auc(pos, neg, np.array([7, 7])) == pytest.approx(4.5 / 8)
    # group 1 holds 2 targets + 4 negatives (weight 6), group 2 1 target + 2 negatives (weight 3)
    uneven = group_auc(np.array([0.6, 0.0, 0.0]), np.array([[0.1, 0.7], [0.2, 0.5], [0.3, 0.4]]), np.array([1, 1, 2]))
    # group 1: positives 0.6, 0.0 vs negatives 0.1 0.7 0.2 0.5 -> 0.6 beats 3, 0.0 beats 0 -> 3/8;
    # group 2: 0.0 vs 0.3 0.4 -> 0;  (6 * 3/8 + 3 * 0) / 9 = 0.25
    assert uneven == pytest.approx((6 * 3 / 8 + 3 * 0.0) / 9) == 0.25


def test_sampled_protocol_reports_pooled_auc_and_gauc():
    # domain A: items 1..6; every user has seen 3 of them, so 2 negatives are always available
    seqs = [[1, 2, 3], [2, 3, 4], [4, 5, 6]]
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    ds = MultiDomainDataset(
        name="toy", domains=["A"], item_domain=np.array([-1, 0, 0, 0, 0, 0, 0]), item_raw_id=[""] + list("abcdef"),
        item_fields={"title": [""] + list("abcdef")}, item_text=[""] + list("abcdef"),
        user_raw_id=["u0", "u1", "u2"], user_offsets=offsets,
        inter_item=np.concatenate([np.array(s) for s in seqs]), inter_role=np.tile([0, 1, 2], 3).astype(np.int8),
    )
    examples = {"history": np.zeros((3, 2), dtype=np.int64), "history_cross": np.zeros((3, 2), dtype=np.int64),
                "target": np.array([3, 4, 6]), "domain": np.array([0, 0, 0]), "user": np.array([0, 1, 2])}
    report = evaluate(ds, {0: torch.nn.Identity()}, _FixedScores(), examples, split="test", ks=[1],
                      protocol="sampled", negatives=2, seed=3, progress=False)
    cand = sample_negatives(ds, examples, 2, seed=3 + 1)  # the test split's seed
    pos, neg = -cand[:, 0], -cand[:, 1:]  # _FixedScores: score = -item id
    pairs = [(p > q) + 0.5 * (p == q) for i, p in enumerate(pos) for q in neg.ravel()]
    assert report.get("pooled_auc", "A") == pytest.approx(np.mean(pairs))
    per_user = [np.mean([(p > q) for q in neg[i]]) for i, p in enumerate(pos)]  # one example per user
    assert report.get("gauc", "A") == pytest.approx(np.mean(per_user))
    assert report.get("gauc") == pytest.approx(report.get("gauc", "A"))
