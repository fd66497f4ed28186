"""GRU4Rec: padding never reaches the recurrence, the loss is CE over the target's domain only."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from classic_baselines.gru4rec import Gru4RecParams, build_gru4rec, shift_padding
from mtrec.config import resolve


def small_model(tiny_run, **params):
    torch.manual_seed(0)
    return build_gru4rec(Gru4RecParams(embedding=8, hidden=6, dropout=0.0, **params), tiny_run).eval()


def test_shift_padding_moves_real_items_and_back():
    items = torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4], [0, 0, 0, 0]])
    lengths = (items > 0).sum(1)
    right = shift_padding(items, lengths, "right")
    assert right.tolist() == [[3, 4, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]]
    assert shift_padding(right, lengths, "left").tolist() == items.tolist()


def test_output_equals_a_plain_gru_over_the_unpadded_history(tiny_run):
    model = small_model(tiny_run)
    history = [2, 5, 3]
    with torch.no_grad():
        ref, _ = model.gru(model.item_embedding(torch.tensor([history])))
        expected = model.project(ref)[0]  # [3, E], started from a zero state at the first real item
        for padded in ([0, 2, 5, 3], [0, 0, 0, 0, 2, 5, 3]):  # more padding must change nothing
            out = model.sequence_output(torch.tensor([padded]))[0]
            torch.testing.assert_close(out[-3:], expected)
            assert torch.all(out[:-3] == 0)


def test_loss_is_cross_entropy_over_the_targets_domain_items(tiny_run):
    model = small_model(tiny_run)
    batch = {"input": torch.tensor([[0, 0, 1, 2], [0, 0, 0, 5]]), "target": torch.tensor([[0, 0, 2, 3], [0, 0, 0, 7]])}
    loss = model.loss(batch)
    assert loss.counts == {"A": 2, "B": 1}
    out = model.sequence_output(batch["input"])
    emb = model.item_embedding.weight
    logits_a = out[0, 2:] @ emb[1:5].T  # domain A = items 1-4; targets 2 and 3 are local 1 and 2
    logits_b = out[1, 3:] @ emb[5:8].T  # domain B = items 5-7; target 7 is local 2
    torch.testing.assert_close(loss.losses["A"], F.cross_entropy(logits_a, torch.tensor([1, 2])))
    torch.testing.assert_close(loss.losses["B"], F.cross_entropy(logits_b, torch.tensor([2])))


def test_a_domains_loss_leaves_other_domains_item_embeddings_alone(tiny_run):
    model = small_model(tiny_run)
    batch = {"input": torch.tensor([[0, 1, 2, 3]]), "target": torch.tensor([[0, 2, 3, 4]])}
    model.loss(batch).losses["A"].backward()
    grad = model.item_embedding.weight.grad
    assert grad[1:5].abs().sum() > 0 and torch.all(grad[5:] == 0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.gru.parameters())


def test_shared_and_per_example_candidates_agree_and_views_differ(tiny_run):
    batch = {"history": torch.tensor([[0, 0, 1, 2], [0, 0, 0, 3]]),
             "history_cross": torch.tensor([[0, 1, 5, 2], [0, 6, 7, 3]])}
    single, cross = small_model(tiny_run), small_model(tiny_run, view="cross")
    shared = single.score(batch, torch.tensor([1, 2, 3, 4]))
    per_example = single.score(batch, torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]]))
    assert shared.shape == (2, 4)
    torch.testing.assert_close(shared, per_example)
    assert not torch.allclose(shared, cross.score(batch, torch.tensor([1, 2, 3, 4])))


def test_quick_gru4rec_learns_on_the_bundled_dataset(plugins, tmp_path):
    """Two quick epochs on one domain: the training loss falls (the model learns something)."""
    from mtrec.engine import execute_run

    resolved = resolve(plugins.catalogue, "gru4rec", quick=True, overrides=[
        "training.threads=1", "training.epochs=2", "training.max_train_examples=2000",
        "domains.targets=[Office]", "evaluation.valid_max_users=100"])
    outcome = execute_run(resolved, plugins, registry=None, progress=False, output_root=tmp_path)
    (stage,) = outcome.stages
    assert stage["name"] == "single:Office" and stage["epochs_run"] == 2
    assert stage["history"][1]["loss"] < stage["history"][0]["loss"]
    assert set(outcome.test.metrics) == {"Office", "average"}
