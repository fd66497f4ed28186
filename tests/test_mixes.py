"""examples/mixes: configs that combine parts of different methods, each run end to end with --quick.

Every ``examples/mixes/*.yaml`` is run here on the bundled dataset (a new mix file is picked up by
the parametrisation; ``EXPECTED`` says what each one must show besides finite per-domain metrics).
The semantic-ID prompt-recommender mix reuses, through the registry, the identifier that the
NTG-on-GMC mix fitted (``identifier.from_run``), and its identifier is never fitted again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from mtrec.config import resolve
from mtrec.engine import execute_run
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins
from mtrec.registry import open_registry

REPO = Path(__file__).resolve().parents[1]
MIX_DIR = REPO / "examples" / "mixes"
MIXES = sorted(p.stem for p in MIX_DIR.glob("*.yaml"))
REUSES_IDENTIFIER_OF = {"semantic-ids-prompt-recommender": "ntg-on-gmc-unified"}
# Mixes whose end-to-end run lives with the plugin whose mechanism they exercise (with spies on
# its internals); running them here too would only double the suite's time.
RUN_ELSEWHERE = {
    "idp-init-syncrec": "plugins/id-matcher/tests/test_idp_mixes.py",
    "idp-init-man": "plugins/id-matcher/tests/test_idp_mixes.py",
}


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    torch.set_num_threads(1)
    return Plugins().load()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    store = open_registry(f"sqlite:///{tmp_path_factory.mktemp('mix-registry') / 'runs.db'}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def run_mix(plugins, registry, tmp_path_factory):
    """Run a mix once per module (``--quick``, with the registry); later calls get the same outcome."""
    outcomes: dict[str, Any] = {}
    root = tmp_path_factory.mktemp("mix-runs")

    def run(stem: str) -> Any:
        if stem not in outcomes:
            overrides = []
            source = REUSES_IDENTIFIER_OF.get(stem)
            if source is not None:
                overrides.append(f"identifier.from_run={run(source).run_id}")
            resolved = resolve(plugins.catalogue, None, config_file=MIX_DIR / f"{stem}.yaml", quick=True,
                               overrides=overrides)
            outcomes[stem] = execute_run(resolved, plugins, registry=registry, progress=False, output_root=root)
        return outcomes[stem]

    return run


def test_mixes_run_elsewhere_are_run_there():
    for stem, test_file in RUN_ELSEWHERE.items():
        assert f"{stem}.yaml" in (REPO / test_file).read_text() or f'"{stem}' in (REPO / test_file).read_text()


def test_mix_files_are_the_documented_ones():
    assert set(MIXES) >= {"semantic-ids-prompt-recommender", "textual-ids-domain-lora", "ntg-on-gmc-unified",
                          "idp-init-syncrec", "idp-init-man"}
    readme = (MIX_DIR / "README.md").read_text()
    for stem in MIXES:
        assert f"{stem}.yaml" in readme, f"examples/mixes/README.md does not describe {stem}.yaml"


@pytest.mark.parametrize("stem", MIXES)
def test_mix_resolves_with_and_without_quick(plugins, stem):
    for quick in (False, True):
        resolved = resolve(plugins.catalogue, None, config_file=MIX_DIR / f"{stem}.yaml", quick=quick)
        assert resolved.config.recipe in plugins.catalogue.recipes
    full = resolve(plugins.catalogue, None, config_file=MIX_DIR / f"{stem}.yaml").config.model_dump()
    quick = resolve(plugins.catalogue, None, config_file=MIX_DIR / f"{stem}.yaml", quick=True).config.model_dump()
    assert full != quick, f"{stem}: --quick changes nothing"


# --------------------------------------------------------------------------- per-mix expectations


def _ntg_on_gmc(outcome: Any, registry: Any) -> None:
    assert [s["name"] for s in outcome.stages] == ["unified", "lora:Scientific", "lora:Arts", "lora:Office"]
    summary = json.loads((outcome.run_dir / "models" / "loss-weighting.json").read_text())
    assert summary["name"] == "ntg-weighting" and set(summary["relative_ntg"]) == {"Scientific", "Arts", "Office"}
    assert math.isclose(sum(summary["relative_ntg"].values()), 1.0, rel_tol=1e-5)  # a softmax over domains
    # alpha and beta started at 1 and were trained with the unified model; the temperature is fixed (Eq. 11)
    assert any(abs(summary[k] - 1.0) > 1e-6 for k in ("alpha", "beta"))
    assert math.isclose(summary["temperature"], 1.0) and summary["learn_temperature"] is False
    config = json.loads((outcome.run_dir / "config.json").read_text())
    assert config["encoder"]["name"] == "seq2seq" and config["encoder"]["params"]["task_losses"] is True


def _prompt_recommender_on_semantic_ids(outcome: Any, registry: Any) -> None:
    config = json.loads((outcome.run_dir / "config.json").read_text())
    assert (config["identifier"]["name"], config["encoder"]["name"]) == ("semantic-id", "idgenrec-seq2seq")
    source = config["identifier"]["from_run"]
    theirs = Path(registry.artifact_path(source, "identifier"))
    ours = outcome.run_dir / "identifier"
    files = sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert all((theirs / f).read_bytes() == (ours / f).read_bytes() for f in files)


def _textual_ids_with_lora(outcome: Any, registry: Any) -> None:
    names = [s["name"] for s in outcome.stages]
    assert {"lora:Scientific", "lora:Arts", "lora:Office"} <= set(names)
    saved = {p.name for p in (outcome.run_dir / "models").iterdir()}
    assert {"adapter-Scientific.pt", "adapter-Arts.pt", "adapter-Office.pt"} <= saved


EXPECTED: dict[str, Callable[[Any, Any], None]] = {
    "ntg-on-gmc-unified": _ntg_on_gmc,
    "semantic-ids-prompt-recommender": _prompt_recommender_on_semantic_ids,
    "textual-ids-domain-lora": _textual_ids_with_lora,
}


@pytest.mark.slow
@pytest.mark.parametrize("stem", [m for m in MIXES if m not in RUN_ELSEWHERE])
def test_mix_runs_end_to_end(run_mix, registry, plugins, monkeypatch, stem):
    if stem in REUSES_IDENTIFIER_OF:
        run_mix(REUSES_IDENTIFIER_OF[stem])  # the source run fits its identifier first
        identifier_class = plugins.catalogue.get("identifier", "semantic-id").factory

        def no_refit(self, run):
            raise AssertionError("identifier.from_run must load the earlier run's identifier, not fit one")

        monkeypatch.setattr(identifier_class, "fit", no_refit)
    outcome = run_mix(stem)
    targets = json.loads((outcome.run_dir / "config.json").read_text())["domains"]["targets"]
    expected = set(targets or ["Scientific", "Arts", "Office"]) | {"average"}
    assert set(outcome.test.metrics) == expected
    for row in outcome.test.metrics.values():
        assert {"recall@10", "ndcg@10"} <= set(row)
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in row.values())
    assert registry.get_run(outcome.run_id)["status"] == "finished"
    assert stem in EXPECTED, f"add what {stem}.yaml must show to EXPECTED"
    EXPECTED[stem](outcome, registry)


# --------------------------------------------------------------------------- refusals


REFUSALS = [
    ("ntg-on-gmc-unified", ["encoder.params.task_losses=false"],
     r"transfer.params.loss_weighting: transfer 'ntg-weighting' needs an encoder that provides task-losses; "
     r"encoder 'seq2seq' provides generative \(set encoder.params.task_losses=true\)"),
    ("ntg-on-gmc-unified", ["transfer.params.loss_weighting.name=joint"],
     r"transfer.params.loss_weighting.name: transfer 'joint' has no loss combiner to lend .* transfers that do: "
     r"ntg-weighting"),
    ("ntg-on-gmc-unified", ["transfer.params.loss_weighting.params.temperature=-1"],
     r"transfer.params.loss_weighting.params.temperature"),
    ("ntg-on-gmc-unified", ["transfer.name=ntg-weighting", "encoder.params.task_losses=false"],
     r"transfer 'ntg-weighting' needs an encoder that provides task-losses; encoder 'seq2seq' provides "
     r"generative \(set encoder.params.task_losses=true\)"),
    ("ntg-on-gmc-unified", ["decoder.name=topk"], r"decoder 'topk' needs an encoder that provides scores"),
    ("textual-ids-domain-lora", ["transfer.params.loss_weighting.name=ntg-weighting"],
     r"transfer.params.loss_weighting: transfer 'ntg-weighting' needs an encoder that provides task-losses; "
     r"encoder 'idgenrec-seq2seq' provides generative \(set encoder.params.task_losses=true\)"),
    ("semantic-ids-prompt-recommender", ["encoder.params.user_ids=with-items"],
     r"encoder.params.user_ids=with-items: user IDs are written by the textual-id generator; identifier "
     r"'semantic-id' has none"),
    ("ntg-on-gmc-unified", ["transfer.name=idgenrec-alternate"],
     r"transfer 'idgenrec-alternate' needs an identifier that provides textual; identifier 'semantic-id'"),
]


@pytest.mark.parametrize("stem, overrides, message", REFUSALS)
def test_impossible_combinations_are_refused_before_any_work(plugins, stem, overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve(plugins.catalogue, None, config_file=MIX_DIR / f"{stem}.yaml", quick=True, overrides=overrides)


@pytest.mark.slow
def test_identifier_from_a_run_of_another_identifier_is_refused(run_mix, registry, plugins, tmp_path):
    source = run_mix("ntg-on-gmc-unified").run_id
    resolved = resolve(plugins.catalogue, "sasrec", quick=True, overrides=[f"identifier.from_run={source}"])
    with pytest.raises(ConfigError, match=r"identifier.from_run: run .* fitted identifier 'semantic-id', "
                                          r"this run's identifier is 'atomic'"):
        execute_run(resolved, plugins, registry=registry, progress=False, output_root=tmp_path)
