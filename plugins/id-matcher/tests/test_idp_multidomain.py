"""IDP into multi-domain encoders: rows written through mtrec.embeddings, `finetune_together`, and the
checks that refuse an encoder IDP cannot use before any training (tiny three-domain dataset:
pre-train Crafts, new domains Office and Garden)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mtrec_id_matcher.strategy as strategy_module
from mtrec.config import resolve
from mtrec.embeddings import item_embedding_rows
from mtrec.engine import load_run_dataset, prepare_identifier, save_models
from mtrec.errors import ConfigError
from mtrec.run_context import RunContext

from idp_helpers import load_plugins, write_tiny_dataset

TINY = ["training.epochs=2", "training.batch_size=32", "training.threads=1", "transfer.params.matcher_epochs=1",
        "transfer.params.matcher_batch_size=8", "transfer.params.behavior_k=3", "transfer.params.top_m=3",
        "domains.targets=[Office, Garden]", "evaluation.valid_max_users=10", "data.max_len=8"]
SASREC_16 = ["transfer.params.mode=new-encoder", "transfer.params.pretrain_encoder.name=sasrec",
             "transfer.params.pretrain_encoder.params={hidden: 16, layers: 1, loss: bpr}"]
MAN_16 = ["encoder.name=man", "encoder.params={hidden: 16, mlp: [8], groups: 2, backbone_params: {layers: 1, heads: 1}}",
          "decoder.name=pointwise"]


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data"), garden=True)


def make_run(plugins, spec, tmp_path, overrides) -> RunContext:
    resolved = resolve(plugins.catalogue, "idp", overrides=[f"dataset={spec}", *TINY, *overrides])
    dataset = load_run_dataset(resolved, plugins, progress=False)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), tmp_path / "run", progress=False)
    run.identifier = prepare_identifier(run)
    return run


class InstallSpy:
    """Records every ``install_rows`` call and, right after it, what each table holding the items holds."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[dict] = []
        original = strategy_module.install_rows

        def spy(model, items, rows):
            before = {id(e.table): e.table.weight.detach().clone() for e in item_embedding_rows(model, items)}
            original(model, items, rows)
            tables = [(e.table, e.rows, e.held, before[id(e.table)]) for e in item_embedding_rows(model, items)]
            self.calls.append({"model": model, "items": np.asarray(items), "rows": torch.as_tensor(rows).clone(),
                               "tables": [(t.weight.detach().clone(), r, h, b) for t, r, h, b in tables]})

        monkeypatch.setattr(strategy_module, "install_rows", spy)


def no_training(run, monkeypatch):
    def refuse(model, stage):
        raise AssertionError(f"stage {stage.name!r} trained before the configuration was refused")

    monkeypatch.setattr(run, "train_stage", refuse)


@pytest.mark.slow
def test_man_is_initialised_in_its_global_and_local_tables_and_fine_tuned_together(plugins, spec, tmp_path, monkeypatch):
    spy = InstallSpy(monkeypatch)
    run = make_run(plugins, spec, tmp_path, [*SASREC_16, *MAN_16, "transfer.params.finetune_together=true"])
    strategy = run.build("transfer")
    models = strategy.execute(run)
    names = run.dataset.domains
    office, garden = names.index("Office"), names.index("Garden")
    assert [r.name for r in run.stage_results] == ["pretrain", "finetune"]
    assert models[office] is models[garden] and type(models[office]).__name__ == "MAN"
    report = json.loads((run.run_dir / "idp.json").read_text())
    assert report["finetune_domains"] == ["Office", "Garden"] and report["finetune_together"] is True
    assert "finetune_seconds" in report["timings"]

    # 1st install: Eq. 9 rows into the pre-trained SASRec; 2nd: the same rows into the new MAN
    pre_call, man_call = spy.calls
    assert type(pre_call["model"]).__name__ == "SASRec" and man_call["model"] is models[office]
    targets = np.sort(np.concatenate([run.dataset.domain_items[office], run.dataset.domain_items[garden]]))
    assert np.array_equal(np.sort(man_call["items"]), targets)
    assert torch.equal(man_call["rows"], pre_call["rows"])
    global_table, *local_tables = man_call["tables"]
    for weight, rows, held, before in man_call["tables"]:
        assert torch.equal(weight[rows[held]], man_call["rows"][held])  # the generated rows, as installed
        untouched = torch.ones(weight.shape[0], dtype=torch.bool)
        untouched[rows[held]] = False
        assert torch.equal(weight[untouched], before[untouched])  # nothing else moved
    assert int(global_table[2].sum()) == len(targets)
    assert [int(h.sum()) for _, _, h, _ in local_tables] == [0, 24, 24]  # Crafts' local table holds none of them
    # fine-tuning started from there: the final global rows of the targets moved away from the installed ones
    final = models[office].global_items.weight.detach()[torch.as_tensor(man_call["items"])]
    assert not torch.allclose(final, man_call["rows"])

    # saved once, reloaded as MAN for both targets, with the same scores
    save_models(run, strategy, models)
    assert json.loads((run.run_dir / "models" / "models.json").read_text()) == {str(office): "model-0.pt",
                                                                                   str(garden): "model-0.pt"}
    reloaded = run.build("transfer").load(run, run.run_dir / "models")
    assert reloaded[office] is reloaded[garden]
    ex = run.examples("test")
    batch = {k: torch.as_tensor(v[:5]) for k, v in ex.items()}
    candidates = torch.as_tensor(run.dataset.domain_items[office])
    with torch.no_grad():
        assert torch.allclose(models[office].eval().score(batch, candidates), reloaded[office].score(batch, candidates))


@pytest.mark.slow
def test_finetune_mode_together_copies_the_pre_trained_encoder_once(plugins, spec, tmp_path, monkeypatch):
    spy = InstallSpy(monkeypatch)
    run = make_run(plugins, spec, tmp_path, ["encoder.params={hidden: 16, layers: 1, loss: bpr}",
                                             "transfer.params.finetune_together=true"])
    models = run.build("transfer").execute(run)
    office, garden = run.dataset.domains.index("Office"), run.dataset.domains.index("Garden")
    assert [r.name for r in run.stage_results] == ["pretrain", "finetune"]
    assert models[office] is models[garden] and models[office] is not spy.calls[0]["model"]  # a copy is tuned
    assert len(spy.calls) == 1  # mode finetune: the rows go into the pre-trained encoder only


def test_a_pre_training_encoder_without_a_plain_table_is_refused_before_training(plugins, spec, tmp_path, monkeypatch):
    run = make_run(plugins, spec, tmp_path, [*MAN_16, "transfer.params.mode=new-encoder"])  # MAN pre-trains
    no_training(run, monkeypatch)
    with pytest.raises(ConfigError, match=r"pre-training encoder MAN has no `item_embedding`.*pretrain_encoder"):
        run.build("transfer").execute(run)


def test_id_text_into_an_encoder_without_a_plain_table_is_refused_before_training(plugins, spec, tmp_path, monkeypatch):
    run = make_run(plugins, spec, tmp_path, [*SASREC_16, *MAN_16, "transfer.params.id_text=true"])
    no_training(run, monkeypatch)
    with pytest.raises(ConfigError, match=r"transfer\.params\.id_text: .*encoder 'man' \(MAN\) has none"):
        run.build("transfer").execute(run)


def test_a_width_mismatch_the_params_cannot_show_is_refused_before_training(plugins, spec, tmp_path, monkeypatch):
    run = make_run(plugins, spec, tmp_path, [*SASREC_16, *MAN_16])
    no_training(run, monkeypatch)
    strategy = run.build("transfer")
    # as if the encoder's params did not call its width `hidden` (the config-time check passed):
    # the built tables are compared before pre-training
    monkeypatch.setattr(run.params["encoder"], "hidden", 12)
    with pytest.raises(ConfigError, match=r"item_embedding is 16-d but encoder 'man' keeps 12-d.*encoder\.params\.hidden"):
        strategy.execute(run)
