"""``transfer.from_run``: a run that takes an earlier run's identifier and unified stage.

The point of the feature is that taking a stage is the same computation as training it: a run with
``mode=full`` that takes the unified stage of a LoRA run must end with exactly the metrics of a
``mode=full`` run that trains everything itself (same seed, CPU).  Everything that would make the
taken stage another computation is refused before the run is recorded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtrec.builtins.atomic import AtomicIdentifier
from mtrec.cli import main
from mtrec.paths import data_dir
from mtrec.registry import open_registry
from mtrec.training.checkpoint import load_checkpoint, resume_dir
from ops_helpers import read_metrics, run_args, write_tiny_dataset

UNIFIED_THEN = ["--set", "transfer.name=unified-then-lora", "--set", "transfer.params.lora_epochs=2",
                "--set", "transfer.params.r=2", "--set", "training.epochs=2"]
FULL = ["--set", "transfer.params.mode=full"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _run(spec: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, run_args(spec, *UNIFIED_THEN, *extra, "--metrics-json", str(out)))
    assert result.exit_code == 0, result.output
    return read_metrics(out)


@pytest.fixture(scope="module")
def lora_run(spec, tmp_path_factory) -> dict:
    return _run(spec, tmp_path_factory.mktemp("lora") / "m.json", "--name", "lora")


def _stage(metrics: dict, name: str) -> dict:
    return next(s for s in metrics["stages"] if s["name"] == name)


def _refused(args: list[str]) -> str:
    """The CLI's message for a refused run, which must leave no run folder and no registry row."""
    runs = data_dir() / "runs"
    before = set(runs.iterdir())
    with open_registry() as reg:
        rows = len(reg.list_runs())
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert set(runs.iterdir()) == before
    with open_registry() as reg:
        assert len(reg.list_runs()) == rows
    return result.output


def test_taking_the_unified_stage_is_the_same_computation_as_training_it(spec, lora_run, tmp_path, monkeypatch):
    trained = _run(spec, tmp_path / "trained.json", *FULL, "--name", "full-trained")

    def refit(*_args, **_kwargs):
        raise AssertionError("a run with transfer.from_run must load the earlier run's identifier, not fit one")

    monkeypatch.setattr(AtomicIdentifier, "fit", refit)
    prefix = lora_run["run_id"][:-2]  # a unique prefix is enough; the config records the full id
    taken = _run(spec, tmp_path / "taken.json", *FULL, "--set", f"transfer.from_run={prefix}", "--name", "full-taken")

    assert taken["test"] == trained["test"]  # bit for bit, every domain and metric
    unified = _stage(taken, "unified")
    assert unified["from_run"] == lora_run["run_id"] and _stage(trained, "unified")["from_run"] is None
    assert unified["best_value"] == _stage(lora_run, "unified")["best_value"] \
        == _stage(trained, "unified")["best_value"]
    for name in ("finetune:A", "finetune:B"):
        assert _stage(taken, name)["from_run"] is None  # trained here
        assert _stage(taken, name)["history"] == _stage(trained, name)["history"]
    # the taken stage is this run's own resume file now, saying where it came from
    done = load_checkpoint(resume_dir(data_dir() / "runs" / taken["run_id"]) / "001-unified.done.pt")
    assert done["result"]["from_run"] == lora_run["run_id"]
    with open_registry() as reg:
        assert reg.get_run(taken["run_id"])["config"]["transfer"]["from_run"] == lora_run["run_id"]


def test_a_run_whose_shared_stages_would_differ_is_refused_before_it_is_recorded(spec, lora_run, tmp_path):
    source = f"transfer.from_run={lora_run['run_id']}"
    # training.lr changes the unified stage; only the per-domain params may differ
    out = _refused(run_args(spec, *UNIFIED_THEN, *FULL, "--set", source, "--set", "training.lr=0.01"))
    assert "training.lr: 0.001 there, 0.01 here" in out and "transfer.params.{alpha, dropout" in out
    assert "Traceback" not in out

    other = write_tiny_dataset(tmp_path / "other", users=80)
    out = _refused(run_args(other, *UNIFIED_THEN, *FULL, "--set", source))
    assert f"run {lora_run['run_id']} trained on another dataset" in out

    out = _refused(run_args(spec, *UNIFIED_THEN, "--set", "transfer.from_run=20000101-000000-nosuch"))
    assert "no run folder" in out and "20000101-000000-nosuch" in out
    out = _refused(run_args(spec, *UNIFIED_THEN, "--set", "transfer.from_run=../runs"))
    assert "is not a run id" in out

    # a strategy without per-domain stages has nothing to share
    out = _refused(run_args(spec, "--set", "transfer.name=joint", "--set", source))
    assert "transfer 'joint' has no stage another run can share" in out

    # from_run of a kind that would ignore it
    out = _refused(run_args(spec, "--set", "encoder.from_run=" + lora_run["run_id"]))
    assert "encoder.from_run: only identifier.from_run" in out


def test_a_source_run_without_the_stage_fails_the_run_with_the_file_named(spec, lora_run, tmp_path):
    """The earlier run need not have finished; the stage taken must have."""
    runs = data_dir() / "runs"
    early = runs / "20000101-000000-early0"
    shutil.copytree(runs / lora_run["run_id"], early)
    for path in resume_dir(early).glob("001-*"):
        path.unlink()
    result = CliRunner().invoke(main, run_args(spec, *UNIFIED_THEN, *FULL, "--set", f"transfer.from_run={early.name}",
                                               "--metrics-json", str(tmp_path / "m.json")))
    assert result.exit_code == 2, result.output
    assert "has not finished stage 'unified'" in result.output and "001-unified.done.pt" in result.output
    assert not (tmp_path / "m.json").exists()


def test_a_source_whose_files_lead_out_of_its_folder_is_refused(spec, lora_run, tmp_path):
    runs = data_dir() / "runs"
    linked = runs / "20000101-000000-linked"
    shutil.copytree(runs / lora_run["run_id"], linked)
    outside = tmp_path / "elsewhere"
    shutil.move(str(linked / "identifier"), outside)
    (linked / "identifier").symlink_to(outside, target_is_directory=True)
    out = _refused(run_args(spec, *UNIFIED_THEN, *FULL, "--set", f"transfer.from_run={linked.name}"))
    assert "refusing to read" in out and "leads out of run 20000101-000000-linked's folder" in out


def test_which_strategies_share_a_stage_and_that_they_declare_only_their_own_params():
    from mtrec.config import resolve
    from mtrec.plugins import Plugins
    from mtrec.training.reuse import per_domain_params

    catalogue = Plugins().load().catalogue
    for component in catalogue.components["transfer"].values():
        declared = getattr(component.factory, "per_domain_params", frozenset())
        assert declared <= set(component.params.model_fields), f"{component.name}: {declared}"
    assert {"mode", "r", "lora_lr"} <= per_domain_params(resolve(catalogue, "gmc"))
    # unified-then-lora's own stage-1 keys are not among them
    assert not {"domain_weighting", "loss_weighting"} & per_domain_params(resolve(catalogue, "gmc"))
    # IDGenRec's rounds regenerate the identifier: nothing to share, though it subclasses unified-then-lora
    assert per_domain_params(resolve(catalogue, "idgenrec")) == frozenset()
    assert per_domain_params(resolve(catalogue, "tiger")) == frozenset()
