"""End to end on the bundled dataset: fit, alternate training with a regeneration, trie decoding."""

from __future__ import annotations

import json

import pytest
import torch

from mtrec.config import resolve
from mtrec.engine import execute_run
from mtrec.plugins import Plugins
from mtrec_textual_id import plugin as plugin_module

TINY = [
    "identifier.params.max_pieces=300", "identifier.params.warm_max_items=200", "identifier.params.max_penalty=2",
    "identifier.params.groups=3", "transfer.params.rounds=2", "transfer.params.recommender_epochs=1",
    "transfer.params.generator_max_examples=32", "training.max_train_examples=64", "evaluation.valid_max_users=10",
    "domains.targets=[Scientific]", "decoder.params.beam_size=5", "training.threads=1",
    "transfer.params.last_round_epochs=2",
]


@pytest.mark.slow
def test_alternate_run_regenerates_unique_ids_and_decodes(tmp_path):
    plugins = Plugins().load()
    if "textual-id" not in plugins.infos:
        plugins.register_module(plugin_module, "textual-id", "mtrec-textual-id")
    outcome = execute_run(resolve(plugins.catalogue, "idgenrec", quick=True, overrides=TINY), plugins,
                          progress=False, output_root=tmp_path)
    meta = json.loads((outcome.run_dir / "identifier" / "textual_id.json").read_text())
    assert meta["version"] == 2 and [h["reason"] for h in meta["history"]] == ["initial", "round 2"]
    tokens = torch.load(outcome.run_dir / "identifier" / "textual_id.pt", weights_only=True)["tokens"].numpy()
    rows = {tuple(r) for r in tokens[1:]}
    assert len(rows) == tokens.shape[0] - 1  # unique over all domains
    assert (tokens[1:, 0] != 0).all() and (tokens[:, -1] == 0).all()  # >= 1 piece, always an [END]
    stages = {s["name"]: s for s in outcome.stages}
    assert list(stages) == ["recommender:1", "generator:2", "recommender:2"]
    # the last round's own budget; the first round is intermediate, never "capped" (its best is its 1-epoch cap)
    assert [stages[n]["epoch_cap"] for n in stages] == [1, 1, 2]
    assert stages["recommender:1"]["intermediate"] and not stages["recommender:1"]["capped"]
    assert not stages["recommender:2"]["intermediate"]
    scientific = outcome.test.metrics["Scientific"]
    assert 0.0 <= scientific["ndcg@10"] <= scientific["recall@10"] <= 1.0
