"""Registration, the recipe and its switches, and end-to-end runs through the engine."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from man_helpers import TINY
from mtrec.config import resolve
from mtrec.engine import execute_run
from mtrec.errors import ConfigError
from mtrec_mixed_attention.recipes import ABLATIONS, BACKBONE_STUDY, BACKBONES


def test_encoder_decoder_and_recipe_are_registered(plugins):
    cat = plugins.catalogue
    assert cat.get("encoder", "man").provides == frozenset({"discriminative", "scores", "pointwise", "embeddings"})
    assert cat.get("decoder", "pointwise").requires == {"encoder": frozenset({"scores"})}
    recipe = cat.recipe("man")
    assert recipe.quick
    params = recipe.config["encoder"]["params"]
    assert params["hidden"] == 20 and params["mlp"] == [20, 10]  # the paper's Amazon settings
    paper = cat.recipe("man-paper").config  # man is CPU-sized (test_man_recipes_scale.py)
    assert paper["training"]["lr"] == 1e-3 and paper["training"]["batch_size"] == 20


@pytest.mark.parametrize("switches", [*ABLATIONS.values(), *BACKBONE_STUDY.values(),
                                      *(b + v for b in BACKBONES.values() for v in BACKBONE_STUDY.values())])
def test_ablations_and_backbone_study_are_config_switches(plugins, switches):
    for quick in (False, True):
        resolved = resolve(plugins.catalogue, "man", quick=quick, overrides=switches)
        assert resolved.config.encoder.name == "man"


def test_figure_3_backbones_are_gru4rec_and_sasrec_with_their_own_params(plugins):
    assert set(BACKBONES) == {"sasrec", "gru4rec"}  # §4.4's backbones but SURGE, which mtrec lacks
    for quick in (False, True):
        for name, switches in BACKBONES.items():
            params = resolve(plugins.catalogue, "man", quick=quick, overrides=switches).params["encoder"]
            assert params.backbone == name
            assert ("heads" in params.backbone_params) == (name == "sasrec")
    # without backbone_params, a backbone gets MAN's defaults for it, and the resolved config shows them
    params = resolve(plugins.catalogue, "man", overrides=["encoder.params.backbone=gru4rec"]).params["encoder"]
    assert params.backbone_params == {"layers": 1, "dropout": 0.2}


def test_l2_default_is_in_the_papers_grid(plugins):
    # §4.1.3: "Regularization coefficients are searched in [1e-7, 1e-5, 1e-3]"
    for recipe in ("man", "man-paper"):
        assert resolve(plugins.catalogue, recipe).params["encoder"].l2 == 1e-5


def test_unknown_param_names_the_key(plugins):
    with pytest.raises(ConfigError, match="encoder.params.grups: unknown key"):
        resolve(plugins.catalogue, "man", overrides=["encoder.params.grups=3"])


def _synthetic(tmp: Path) -> Path:
    """Two domains of 20 items; each user walks both domains' items in order from one offset."""
    tmp.mkdir(parents=True, exist_ok=True)
    with open(tmp / "interactions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "item", "domain"])
        for u in range(60):
            for step in range(8):
                for dom in ("A", "B"):
                    w.writerow([f"u{u}", f"{dom}{(u + step) % 20}", dom])
    spec = tmp / "dataset.yaml"
    spec.write_text(f"name: walk\nsources:\n  - format: csv\n    path: {tmp / 'interactions.csv'}\n    users: shared\n")
    return spec


@pytest.mark.slow
def test_man_learns_a_sequential_pattern_end_to_end(plugins, tmp_path):
    spec = _synthetic(tmp_path / "data")
    overrides = [*TINY, "encoder.params.hidden=16", "encoder.params.mlp=[16, 8]", "training.epochs=12",
                 "training.patience=12", "training.batch_size=64", "training.lr=0.01", "training.threads=1",
                 "evaluation.ks=[1, 5]", "training.select_metric=ndcg@5", f"dataset={spec}"]
    outcome = execute_run(resolve(plugins.catalogue, "man", overrides=overrides), plugins, progress=False,
                          output_root=tmp_path / "runs")
    test = outcome.test.metrics
    assert set(test) == {"A", "B", "average"}
    # random ranking of 20 items puts the target in the top 5 a quarter of the time
    assert test["average"]["recall@5"] > 0.5
    assert outcome.stages[0]["name"] == "joint"
    # the sampled protocol of the paper reports pooled AUC and GAUC from the same model
    sampled = execute_run(resolve(plugins.catalogue, "man", overrides=[
        *overrides, "training.epochs=1", "evaluation.protocol=sampled", "evaluation.negatives=5"]),
        plugins, progress=False, output_root=tmp_path / "runs2").test.metrics
    assert {"auc", "pooled_auc", "gauc", "mrr", "ndcg@5"} <= set(sampled["A"])
