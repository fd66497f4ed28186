"""SyNCRec keeps its item ID embeddings in one shared table over global ids (mtrec.embeddings), so a
component such as IDP can install rows that both views and the candidate scores then use."""

from __future__ import annotations

import torch

from mtrec.embeddings import has_plain_item_embedding, item_embedding_rows, write_item_embeddings
from mtrec_asymmetric_moe import plugin as plugin_module
from syncrec_helpers import tiny_dataset, tiny_model


def test_syncrec_declares_and_meets_the_embeddings_contract():
    registered = []
    plugin_module.mtrec_register_components(registered.append)
    syncrec = next(c for c in registered if c.kind == "encoder" and c.name == "syncrec")
    assert "embeddings" in syncrec.provides
    model = tiny_model(tiny_dataset())
    assert has_plain_item_embedding(model)
    [entry] = item_embedding_rows(model, torch.tensor([6, 2]))
    assert entry.table is model.item_embedding and entry.rows.tolist() == [6, 2]


def test_written_rows_are_what_syncrec_scores_candidates_with():
    model = tiny_model(tiny_dataset()).eval()
    before = model.item_embedding.weight.detach().clone()
    rows = torch.stack([torch.full((8,), 0.5), torch.arange(8, dtype=torch.float32)])
    write_item_embeddings(model, torch.tensor([6, 2]), rows)
    after = model.item_embedding.weight.detach()
    assert torch.equal(after[[6, 2]], rows)
    assert torch.equal(after[[0, 1, 3, 4, 5, 7, 8]], before[[0, 1, 3, 4, 5, 7, 8]])
    batch = {"history_cross": torch.tensor([[0, 0, 0, 1, 5, 3]])}
    with torch.no_grad():
        user = model.cross_representation(batch["history_cross"])[:, -1]
        scores = model.score(batch, torch.tensor([2, 6]))
    assert torch.allclose(scores, user @ rows[[1, 0]].T, atol=1e-6)  # Eq. 19 with the written rows
