"""The core ``gru4rec`` encoder: shapes, padding, that it learns, and that it stands in for ``sasrec``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtrec.builtins.gru4rec import GRU4Rec, GRU4RecParams, right_aligned_gru
from mtrec.config import resolve
from mtrec.data.views import next_item_windows, pad_left
from mtrec.embeddings import item_embedding_rows
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins

# Domain A: items 1-12, domain B: items 13-24.
N_ITEMS, SPLIT = 24, 12
ITEM_DOMAIN = torch.tensor([0] + [0] * SPLIT + [1] * (N_ITEMS - SPLIT))
DOMAIN_ITEMS = [torch.arange(1, SPLIT + 1), torch.arange(SPLIT + 1, N_ITEMS + 1)]


def model(**params) -> GRU4Rec:
    torch.manual_seed(0)
    params = {"hidden": 8, "dropout": 0.0, **params}
    return GRU4Rec(GRU4RecParams(**params), N_ITEMS, ITEM_DOMAIN, DOMAIN_ITEMS, ["A", "B"])


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return Plugins().load()


def test_shapes_of_hidden_states_user_embeddings_and_scores():
    m = model(hidden=8, layers=2).eval()
    history = torch.as_tensor(pad_left([np.array([1, 2, 3]), np.array([13]), np.array([], dtype=np.int64)], 5))
    batch = {"history": history, "history_cross": history}
    assert m.sequence_output(history).shape == (3, 5, 8)
    assert m.user_embedding(batch).shape == (3, 8)
    shared = m.score(batch, DOMAIN_ITEMS[0])
    per_example = m.score(batch, DOMAIN_ITEMS[0].expand(3, -1))
    assert shared.shape == per_example.shape == (3, SPLIT)
    torch.testing.assert_close(shared, per_example)
    assert torch.isfinite(shared).all()  # the empty history too


@pytest.mark.parametrize("layers", [1, 2])
def test_left_padding_never_changes_the_representation(layers):
    """The core left-pads histories (``pad_left``): however much padding precedes a history, its
    representation is the last hidden state of a GRU run over the history alone, from a zero state."""
    m = model(layers=layers).eval()
    history = [3, 7, 2, 9]
    with torch.no_grad():
        _, h_n = m.gru(m.item_embedding(torch.tensor([history])))
        expected = h_n[-1, 0]  # the top layer's last hidden state, no padding anywhere
        for width in (4, 5, 9):
            padded = torch.as_tensor(pad_left([np.array(history), np.array([13, 14])], width))
            assert padded[0, -1] == history[-1] and (padded[0, : width - 4] == 0).all()  # left padding
            out = m.sequence_output(padded)
            torch.testing.assert_close(out[0, -1], expected)
            torch.testing.assert_close(m.user_embedding({"history": padded})[0], expected)
            assert (out[0, : width - 4] == 0).all()  # nothing is produced at padding positions
        # what sits at padding positions of an embedded sequence (MAN's backbone path) is never read
        x = m.item_embedding(torch.tensor([[0, 0] + history]))
        padding = torch.tensor([[True, True] + [False] * 4])
        noisy = x.clone()
        noisy[0, :2] = torch.randn(2, x.shape[-1])
        torch.testing.assert_close(m.encode_embeddings(noisy, padding)[0, -1], expected)


def test_right_aligned_gru_matches_a_per_row_gru():
    gru = torch.nn.GRU(4, 4, batch_first=True)
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    with torch.no_grad():
        out = right_aligned_gru(gru, x, lengths)
        for b, n in enumerate(lengths.tolist()):
            alone, _ = gru(x[b : b + 1, 6 - n :])
            torch.testing.assert_close(out[b, 6 - n :], alone[0])
            assert (out[b, : 6 - n] == 0).all()


def _successor(item: torch.Tensor) -> torch.Tensor:
    """The next item of the same domain, wrapping around: 1 -> 2, ..., 12 -> 1; 13 -> 14, ..., 24 -> 13."""
    base = torch.where(item > SPLIT, SPLIT, 0)
    return base + (item - base) % SPLIT + 1


def _walks(n: int, length: int, g: torch.Generator) -> torch.Tensor:
    start = torch.randint(1, N_ITEMS + 1, (n, 1), generator=g)
    walk = [start[:, 0]]
    for _ in range(length - 1):
        walk.append(_successor(walk[-1]))
    return torch.stack(walk, dim=1)


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_learns_the_successor_rule(loss):
    """Trained through ``loss`` on walks where item i is followed by i + 1 (within its domain), a tiny
    GRU4Rec ranks the successor of a history's last item first among the domain's 12 items."""
    torch.manual_seed(0)
    m = model(hidden=16, loss=loss, negatives=4)
    g = torch.Generator().manual_seed(1)
    walks = _walks(200, 8, g)
    inputs, targets = next_item_windows([w.numpy() for w in walks], 6)
    inputs, targets = torch.as_tensor(inputs), torch.as_tensor(targets)
    lengths = torch.randint(1, 7, (300,), generator=g)  # test histories of 1 to 6 items, left-padded
    tests = _walks(300, 6, g)
    history = torch.as_tensor(pad_left([w[-n:].numpy() for w, n in zip(tests, lengths.tolist())], 6))
    target = _successor(history[:, -1])

    def top1() -> float:
        m.eval()
        hits = []
        with torch.no_grad():
            for d, items in enumerate(DOMAIN_ITEMS):
                rows = ITEM_DOMAIN[target] == d
                best = items[m.score({"history": history[rows]}, items).argmax(1)]
                hits.append(best == target[rows])
        m.train()
        return float(torch.cat(hits).float().mean())

    untrained = top1()
    optimizer = torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(300):
        idx = torch.randint(inputs.shape[0], (64,), generator=g)
        out = m.loss({"input": inputs[idx], "target": targets[idx]})
        optimizer.zero_grad()
        sum(out.losses.values()).backward()
        optimizer.step()
    assert untrained < 0.35  # chance is 1/12 ~ 0.08
    assert top1() >= 0.9


def test_a_domains_loss_trains_only_that_domains_item_embeddings():
    m = model()
    out = m.loss({"input": torch.tensor([[0, 1, 2, 3]]), "target": torch.tensor([[0, 2, 3, 4]])})
    assert set(out.losses) == {"A"} and out.counts == {"A": 3}
    out.losses["A"].backward()
    grad = m.item_embedding.weight.grad
    assert grad[1 : SPLIT + 1].abs().sum() > 0 and (grad[SPLIT + 1 :] == 0).all()


def test_sasrec_recipe_accepts_gru4rec_wherever_sasrec_is(plugins):
    """``mtrec run --plugin sasrec [--quick] --set encoder.name=gru4rec``: the config validates with
    gru4rec's own defaults (the sasrec params are dropped), and sasrec's switches apply to it."""
    for quick in (False, True):
        resolved = resolve(plugins.catalogue, "sasrec", quick=quick, overrides=["encoder.name=gru4rec"])
        assert resolved.components["encoder"].plugin == "mtrec"
        assert resolved.config.encoder.name == "gru4rec"
        assert resolved.params["encoder"] == GRU4RecParams()
        assert resolved.components["decoder"].name == "topk"  # what sasrec's recipe decodes with
    switched = resolve(plugins.catalogue, "sasrec", overrides=[
        "encoder.name=gru4rec", "encoder.params.hidden=20", "encoder.params.loss=bce", "encoder.params.negatives=16",
        "encoder.params.view=cross", "transfer.name=joint"])
    assert switched.params["encoder"].hidden == 20 and switched.params["encoder"].loss == "bce"
    with pytest.raises(ConfigError, match="encoder.params.heads: unknown key"):
        resolve(plugins.catalogue, "sasrec", overrides=["encoder.name=gru4rec", "encoder.params.heads=2"])
    component = plugins.catalogue.get("encoder", "gru4rec")
    assert component.provides == plugins.catalogue.get("encoder", "sasrec").provides
    # the `embeddings` capability: the plain item table other components read and write
    (rows,) = item_embedding_rows(model(), torch.tensor([3, 15]))
    assert rows.rows.tolist() == [3, 15] and rows.held.all()


def test_quick_sasrec_recipe_runs_with_gru4rec_end_to_end(plugins, tmp_path):
    """The engine trains and tests gru4rec under the sasrec recipe on the bundled data (a few seconds)."""
    from mtrec.engine import execute_run

    resolved = resolve(plugins.catalogue, "sasrec", quick=True, overrides=[
        "encoder.name=gru4rec", "encoder.params.hidden=16", "training.threads=1", "training.epochs=2",
        "training.max_train_examples=2000", "domains.targets=[Office]", "evaluation.valid_max_users=100"])
    outcome = execute_run(resolved, plugins, registry=None, progress=False, output_root=tmp_path)
    (stage,) = outcome.stages
    assert stage["epochs_run"] == 2 and stage["history"][1]["loss"] < stage["history"][0]["loss"]
    assert set(outcome.test.metrics) == {"Office", "average"}
