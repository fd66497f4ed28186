"""`mtrec run --plugin idp` end to end on a tiny two-domain dataset (pre-train Crafts, new domain Office)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mtrec.config import resolve
from mtrec.engine import execute_run, load_run_dataset
from mtrec.run_context import RunContext

from idp_helpers import load_plugins, write_tiny_dataset

TINY = ["encoder.params.hidden=16", "encoder.params.layers=1", "training.epochs=2", "training.batch_size=32",
        "training.threads=1", "transfer.params.matcher_epochs=2", "transfer.params.matcher_batch_size=8",
        "transfer.params.behavior_k=3", "transfer.params.top_m=3", "domains.targets=[Office]"]


def run_idp(tmp_path, *overrides):
    plugins = load_plugins()
    spec = write_tiny_dataset(tmp_path / "data")
    resolved = resolve(plugins.catalogue, "idp", overrides=[f"dataset={spec}", *TINY, *overrides])
    outcome = execute_run(resolved, plugins, registry=None, progress=False, output_root=tmp_path / "runs")
    dataset = load_run_dataset(resolved, plugins, progress=False)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), outcome.run_dir, progress=False)
    strategy = run.build("transfer")
    models = strategy.load(run, outcome.run_dir / "models")
    return outcome, run, models


def scores(model, run):
    ex = run.examples("test")
    batch = {k: torch.as_tensor(v) for k, v in ex.items()}
    candidates = torch.as_tensor(run.dataset.domain_items[run.target_domains[0]])
    with torch.no_grad():
        return model.eval().score(batch, candidates)


@pytest.mark.slow
def test_zero_shot_deploys_eq9_embeddings_and_reloads_identically(tmp_path):
    outcome, run, models = run_idp(tmp_path, "domains.sources=[Crafts]", "transfer.params.id_text=true")
    report = json.loads((outcome.run_dir / "idp.json").read_text())
    assert report["pretrain_domains"] == ["Crafts"] and report["deploy_domains"] == ["Office"]
    assert report["matcher_train"] == "head" and report["index"] == "exact"
    assert [s["name"] for s in outcome.stages] == ["pretrain"]  # zero-shot: no stage sees Office's data
    matches = torch.load(outcome.run_dir / "models" / "matches.pt")
    office = run.target_domains[0]
    model = models[office]
    ids = model.item_embedding.ids.weight.detach()
    # Eq. 9: each Office row is the weighted average of its matched (Crafts) rows, which kept their pre-trained values
    source_rows = ids[matches["source_items"][matches["neighbors"]]]
    expected = torch.einsum("qm,qmh->qh", matches["weights"], source_rows)
    assert torch.allclose(ids[matches["target_items"]], expected, atol=1e-5)
    assert set(matches["target_items"].tolist()) == set(run.dataset.domain_items[office].tolist())
    assert (run.dataset.item_domain[matches["source_items"].numpy()] == run.dataset.domains.index("Crafts")).all()
    # ID+t: the text part is non-zero for Office items only, and it survives save/load
    text = model.item_embedding.text
    assert text[matches["target_items"]].abs().sum() > 0 and text[matches["source_items"]].abs().sum() == 0
    test_ndcg = outcome.test.metrics["Office"]["ndcg@10"]
    reloaded = run.evaluate(models, "test").metrics["Office"]["ndcg@10"]
    assert reloaded == pytest.approx(test_ndcg, abs=1e-6)


@pytest.mark.slow
def test_finetune_and_cold_start_modes(tmp_path):
    # the paper's matcher: the whole sentence encoder fine-tuned (a few steps)
    outcome, run, models = run_idp(tmp_path / "ft", "transfer.params.matcher_train=full",
                                   "transfer.params.matcher_max_steps=2", "transfer.params.behavior_positives_per_step=1")
    assert [s["name"] for s in outcome.stages] == ["pretrain", "finetune:Office"]
    report = json.loads((outcome.run_dir / "idp.json").read_text())
    assert report["finetune_domains"] == ["Office"] and report["matcher_train"] == "full"
    assert report["matcher_fit"]["steps"] == 2
    assert np.isfinite(report["matcher_fit"]["last_epoch_behavior_loss"])

    cold_out, cold_run, _ = run_idp(tmp_path / "cold", "transfer.params.mode=cold-start",
                                    "transfer.params.cold_fraction=0.25")
    cold = json.loads((cold_out.run_dir / "idp.json").read_text())
    assert cold["pretrain_domains"] == ["Office"] and cold["cold_items"] == 6  # 25% of 24 Office items
    matches = torch.load(cold_out.run_dir / "models" / "matches.pt")
    held_out = set(matches["target_items"].tolist())
    assert held_out.isdisjoint(matches["source_items"].tolist())  # held-out items are never matched to themselves
    assert set(cold["cold_metrics"]["test"]["counts"]) >= {"Office"}
