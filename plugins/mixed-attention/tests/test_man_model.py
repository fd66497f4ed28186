"""The ``man`` encoder: examples, negatives, Eq. 14-18, per-domain parameters, variants, backbones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from man_helpers import make_run
from mtrec.components import Component, Params
from mtrec.errors import ConfigError
from mtrec_mixed_attention.decoder import PointwiseDecoder, PointwiseParams
from mtrec_mixed_attention.model import prefix_examples


def test_prefix_examples_one_per_target():
    inputs, targets = prefix_examples([np.array([5, 6, 7, 8]), np.array([9])], max_len=2)
    assert targets.tolist() == [6, 7, 8]
    assert inputs.tolist() == [[0, 5], [5, 6], [6, 7]]


def test_train_tensors_hold_only_training_items(plugins, tmp_path):
    run = make_run(plugins, tmp_path)
    model = run.build_encoder()
    t = model.train_tensors(run, [0])  # domain A: user 0 a1..a4 -> train a1 a2; user 1 2 3 4 1 -> train 2 3; user 4 4 3 2 -> 4
    assert sorted(t["target"].tolist()) == [2, 3]
    assert (run.dataset.item_domain[t["input"][t["input"] > 0].numpy()] == 0).all()


def test_negatives_stay_in_domain_and_skip_the_target(plugins, tmp_path):
    model = make_run(plugins, tmp_path).build_encoder()
    torch.manual_seed(0)
    target = torch.tensor([1, 2, 3, 4] * 50)
    neg = model.sample_negatives(target, 0, 3)
    assert neg.shape == (200, 3)
    assert set(neg.unique().tolist()) == {1, 2, 3, 4}  # every other item of domain A is drawn
    assert not (neg == target.unsqueeze(1)).any()


def test_loss_is_bce_over_target_and_negatives_per_domain(plugins, tmp_path):
    model = make_run(plugins, tmp_path, ["encoder.params.l2=0.001", "encoder.params.disentangle=0.01"]).build_encoder()
    model.eval()  # no dropout: the two passes below see the same network
    batch = {"input": torch.tensor([[0, 0, 0, 1, 2], [0, 0, 0, 5, 6], [0, 0, 0, 0, 8]]), "target": torch.tensor([3, 7, 9])}
    torch.manual_seed(1)
    out = model.loss(batch)
    assert set(out.losses) == {"A", "B", "C"} and out.counts == {"A": 1, "B": 1, "C": 1}
    torch.manual_seed(1)
    for row, name in enumerate(["A", "B", "C"]):
        d = row
        t = batch["target"][row : row + 1]
        cand = torch.cat([t.unsqueeze(1), model.sample_negatives(t, d, model.params.train_negatives)], dim=1)
        logits = model.score_domain(batch["input"][row : row + 1], d, cand)
        labels = torch.tensor([[1.0] + [0.0] * model.params.train_negatives])
        p = torch.sigmoid(logits)
        expected = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()  # Eq. 16
        assert out.losses[name].item() == pytest.approx(expected.item(), rel=1e-5)
    l2 = 0.001 * sum(p.pow(2).sum() for p in model.parameters())
    assert out.extra["l2"].item() == pytest.approx(l2.item(), rel=1e-4)
    assert out.extra["disentangle"].item() < 0


def test_softmax_loss_is_the_cross_entropy_of_the_target_among_its_negatives(plugins, tmp_path):
    model = make_run(plugins, tmp_path, ["encoder.params.loss=softmax", "encoder.params.l2=0"]).build_encoder()
    model.eval()
    batch = {"input": torch.tensor([[0, 0, 0, 1, 2], [0, 0, 0, 2, 1]]), "target": torch.tensor([3, 4])}
    torch.manual_seed(4)
    got = model.loss(batch).losses["A"].item()
    torch.manual_seed(4)
    t = batch["target"]
    cand = torch.cat([t.unsqueeze(1), model.sample_negatives(t, 0, model.params.train_negatives)], dim=1)
    logits = model.score_domain(batch["input"], 0, cand)
    expected = (logits.logsumexp(dim=1) - logits[:, 0]).mean()  # -log softmax of column 0, averaged
    assert got == pytest.approx(expected.item(), rel=1e-5)
    torch.manual_seed(4)
    bce = make_run(plugins, tmp_path, ["encoder.params.l2=0"]).build_encoder()
    bce.load_state_dict(model.state_dict())
    assert bce.eval().loss(batch).losses["A"].item() != pytest.approx(got, rel=1e-3)


def test_domain_loss_trains_its_local_parameters_and_the_shared_ones_only(plugins, tmp_path):
    model = make_run(plugins, tmp_path, ["encoder.params.l2=0", "encoder.params.disentangle=0"]).build_encoder()
    out = model.loss({"input": torch.tensor([[0, 0, 0, 1, 2]]), "target": torch.tensor([3])})  # domain A only
    out.losses["A"].backward()
    grads = {n: p.grad is not None and p.grad.abs().sum().item() > 0 for n, p in model.named_parameters()}
    assert grads["local_items.0.weight"] and grads["global_items.weight"] and grads["prototypes"]
    assert any(v for n, v in grads.items() if n.startswith("local_encoders.0.")) and grads["global_head.first.0.weight"]
    assert any(v for n, v in grads.items() if n.startswith("global_encoder."))
    for other in ("1", "2"):
        for prefix in ("local_items", "local_encoders", "local_heads", "isa", "sfa", "gpa"):
            assert not any(v for n, v in grads.items() if n.startswith(f"{prefix}.{other}.")), (prefix, other)


def test_scores_shared_and_per_example_candidates_agree_and_chunking_is_exact(plugins, tmp_path):
    model = make_run(plugins, tmp_path).build_encoder().eval()
    batch = {"history": torch.tensor([[0, 0, 1, 2, 3], [0, 0, 0, 4, 1]]), "domain": torch.tensor([0, 0]),
             "target": torch.tensor([4, 2])}
    cand = torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        shared = model.score(batch, cand)
        per = model.score(batch, cand.expand(2, -1))
        chunked = PointwiseDecoder(PointwiseParams(max_pairs=3)).rank(model, batch, cand, 2).scores
    assert shared.shape == (2, 4)
    assert torch.allclose(shared, per, atol=1e-6) and torch.allclose(shared, chunked, atol=1e-6)


@pytest.mark.parametrize("variant,present,absent", [
    ("single", ["local_items", "local_encoders"], ["global_items", "global_encoder", "isa", "sfa", "gpa", "prototypes"]),
    ("shared", ["global_items", "global_encoder", "global_head"], ["local_items", "local_encoders", "isa", "gpa"]),
])
def test_backbone_study_variants_keep_one_module(plugins, tmp_path, variant, present, absent):
    model = make_run(plugins, tmp_path, [f"encoder.params.variant={variant}"]).build_encoder()
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert set(present) <= names and not names & set(absent)
    out = model.loss({"input": torch.tensor([[0, 0, 0, 1, 2]]), "target": torch.tensor([3])})
    assert torch.isfinite(out.losses["A"])


@pytest.mark.parametrize("flag,module,parts", [("isa", "isa", 4), ("sfa", "sfa", 4), ("gpa", "gpa", 4)])
def test_ablation_switches_remove_the_module_and_its_input(plugins, tmp_path, flag, module, parts):
    model = make_run(plugins, tmp_path, [f"encoder.params.{flag}=false"]).build_encoder()
    assert not hasattr(model, module)
    assert len(model.local_heads[0].first) == parts  # 5 blocks of Eq. 14 minus the ablated one
    out = model.loss({"input": torch.tensor([[0, 0, 0, 1, 2]]), "target": torch.tensor([3])})
    assert ("disentangle" in out.extra) == (flag != "gpa")


@pytest.mark.parametrize("overrides,message", [
    (["encoder.params.backbone=man"], "cannot be its own backbone"),
    (["encoder.params.backbone=nosuch"], "encoder.params.backbone: unknown encoder 'nosuch'"),
    (["encoder.params.backbone_params={layerz: 1}"], "encoder.params.backbone_params.layerz: unknown key"),
    (["encoder.params.backbone_params={heads: 3}"], "not divisible by 3 heads"),
    (["encoder.params.variant=single", "encoder.params.isa=false"], "variant 'cross' only"),
])
def test_bad_config_is_a_config_error_naming_the_key(plugins, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_run(plugins, tmp_path, overrides).build_encoder()


class _GruParams(Params):
    hidden: int = 8


class _GruEncoder(torch.nn.Module):
    """A minimal third-party encoder that can serve as a MAN backbone (it has encode_embeddings)."""

    def __init__(self, params, run):
        super().__init__()
        self.gru = torch.nn.GRU(params.hidden, params.hidden, batch_first=True)

    def encode_embeddings(self, x, padding):
        return self.gru(x)[0]


def test_any_registered_encoder_with_encode_embeddings_is_a_backbone(plugins, tmp_path):
    if "test-gru" not in plugins.catalogue.components["encoder"]:
        plugins.catalogue.add_component(Component(kind="encoder", name="test-gru", factory=_GruEncoder,
                                                  params=_GruParams, provides=frozenset({"scores"})))
    model = make_run(plugins, tmp_path, ["encoder.params.backbone=test-gru", "encoder.params.backbone_params={}"]).build_encoder()
    grus = [m for m in model.modules() if isinstance(m, torch.nn.GRU)]
    assert len(grus) == 4  # one local encoder per domain (3) + the global one, each its own parameters
    assert len({id(g.weight_ih_l0) for g in grus}) == 4
    out = model.loss({"input": torch.tensor([[0, 0, 0, 1, 2]]), "target": torch.tensor([3])})
    out.losses["A"].backward()
    assert grus[0].weight_ih_l0.grad is not None and grus[1].weight_ih_l0.grad is None  # domain A's, not B's


def test_core_gru4rec_is_a_backbone_without_its_own_item_table(plugins, tmp_path):
    """Figure 3's GRU4Rec backbone: one GRU per domain + a global one; MAN's tables replace gru4rec's own."""
    from mtrec.builtins.gru4rec import GRU4Rec

    model = make_run(plugins, tmp_path, ["encoder.params.backbone=gru4rec", "encoder.params.backbone_params=null",
                                         "encoder.params.l2=0"]).build_encoder()
    backbones = [m for m in model.modules() if isinstance(m, GRU4Rec)]
    assert len(backbones) == 4 and not any(hasattr(b, "item_embedding") for b in backbones)
    assert not any("item_embedding" in n for n, _ in model.named_parameters())
    out = model.loss({"input": torch.tensor([[0, 0, 0, 1, 2]]), "target": torch.tensor([3])})
    out.losses["A"].backward()
    grads = {n: p.grad is not None and p.grad.abs().sum().item() > 0 for n, p in model.named_parameters()}
    assert grads["local_encoders.0.module.gru.weight_ih_l0"] and grads["global_encoder.module.gru.weight_ih_l0"]
    assert not grads["local_encoders.1.module.gru.weight_ih_l0"]  # domain B's encoder: untouched by A's loss
