"""IDGenRec with GMC's per-domain LoRA (examples/mixes/textual-ids-domain-lora.yaml): adapters are
saved per domain after alternate training, and the `mtrec recommend` reload gives identical scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mtrec.builtins.lora import AdapterView
from mtrec.builtins.trie_beam import score_candidates
from mtrec.config import resolve
from mtrec.engine import load_run_dataset, prepare_identifier, save_models
from mtrec.inference import load_run
from mtrec.plugins import Plugins
from mtrec.run_context import RunContext
from mtrec_textual_id import plugin as plugin_module

MIX = Path(__file__).resolve().parents[3] / "examples" / "mixes" / "textual-ids-domain-lora.yaml"
TINY = [
    "identifier.params.max_pieces=300", "identifier.params.warm_max_items=200", "identifier.params.max_penalty=2",
    "identifier.params.groups=3", "transfer.params.rounds=2", "transfer.params.recommender_epochs=1",
    "transfer.params.generator_max_examples=32", "training.max_train_examples=64", "evaluation.valid_max_users=10",
    "domains.targets=[Scientific,Arts]", "decoder.params.beam_size=5", "training.threads=1",
]


class RunFolderRegistry:
    """What `mtrec recommend` asks the registry for, answered from one run folder."""

    def __init__(self, run: RunContext) -> None:
        self.run = run

    def get_run(self, run_id: str) -> dict:
        return {"id": run_id, "status": "finished", "config": self.run.config.model_dump(mode="json"),
                "dataset_spec": self.run.dataset.spec, "dataset_fingerprint": self.run.dataset.fingerprint}

    def artifact_path(self, run_id: str, kind: str) -> Path:
        return self.run.run_dir / kind


@pytest.mark.slow
def test_lora_adapters_are_saved_per_domain_and_reload_identically(tmp_path):
    plugins = Plugins().load()
    if "textual-id" not in plugins.infos:
        plugins.register_module(plugin_module, "textual-id", "mtrec-textual-id")
    resolved = resolve(plugins.catalogue, None, config_file=MIX, quick=True, overrides=TINY)
    assert resolved.config.transfer.params["mode"] == "lora" and resolved.config.transfer.params["lora_epochs"] == 1
    dataset = load_run_dataset(resolved, plugins, progress=False)
    torch.manual_seed(0)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), tmp_path / "run", progress=False)
    run.identifier = prepare_identifier(run)
    strategy = run.build("transfer")
    models = strategy.execute(run)
    save_models(run, strategy, models)

    names = [s.name for s in run.stage_results]
    assert names == ["recommender:1", "generator:2", "recommender:2", "lora:Scientific", "lora:Arts"]
    folder = run.run_dir / "models"
    assert sorted(p.name for p in folder.glob("adapter-*.pt")) == ["adapter-Arts.pt", "adapter-Scientific.pt"]
    assert json.loads((folder / "transfer.json").read_text())["adapters"] == {"0": "Scientific", "1": "Arts"}
    assert all(isinstance(m, AdapterView) for m in models.values())

    run2, reloaded = load_run(RunFolderRegistry(run), "run", plugins)
    assert run2.identifier.version == run.identifier.version == 2  # the IDs after the regeneration
    assert torch.equal(run2.identifier.item_tokens(), run.identifier.item_tokens())
    assert sorted(reloaded) == sorted(models)
    scores = {}
    for d, model in models.items():
        tensors = model.train_tensors(run, [d])
        batch = {"history": tensors["history"][:6], "domain": torch.full((6,), d)}
        items = torch.as_tensor(dataset.domain_items[d][:20])
        tokens = run.identifier.item_tokens()[items].unsqueeze(0).expand(6, -1, -1)
        with torch.no_grad():
            before = score_candidates(model.eval(), batch, tokens)
            after = score_candidates(reloaded[d].eval(), batch, tokens)
        assert torch.equal(before, after), f"domain {dataset.domains[d]}"
        scores[d] = before
    # the adapters differ: the two domains' models do not score alike
    assert not torch.equal(scores[0], scores[1])
