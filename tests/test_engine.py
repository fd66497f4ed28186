"""End-to-end runs of the sasrec recipe on the bundled dataset (tiny settings)."""

from __future__ import annotations

import pytest

from mtrec.config import resolve
from mtrec.engine import execute_run
from mtrec.plugins import Plugins
from mtrec.run_context import RunContext

TINY = ["training.epochs=2", "encoder.params.hidden=16", "evaluation.valid_max_users=100"]


@pytest.fixture(scope="module")
def plugins():
    return Plugins().load()


def _run(plugins, tmp_path, extra=()):
    resolved = resolve(plugins.catalogue, "sasrec", quick=True, overrides=[*TINY, *extra])
    return execute_run(resolved, plugins, progress=False, output_root=tmp_path)


@pytest.mark.slow  # three sasrec runs (~70 s): in `make test`, not `make test-fast`
def test_same_config_same_metrics_on_cpu(plugins, tmp_path):
    first = _run(plugins, tmp_path / "a")
    second = _run(plugins, tmp_path / "b")
    assert first.test.metrics == second.test.metrics
    assert set(first.test.metrics) == {"Scientific", "Arts", "Office", "average"}
    other_seed = _run(plugins, tmp_path / "c", ["seed=7"])
    assert other_seed.test.metrics != first.test.metrics


def test_test_split_is_scored_once_after_training(plugins, tmp_path, monkeypatch):
    calls: list[str] = []
    original = RunContext.evaluate

    def spy(self, models, split, domains=None):
        calls.append(split)
        return original(self, models, split, domains)

    monkeypatch.setattr(RunContext, "evaluate", spy)
    outcome = _run(plugins, tmp_path, ["transfer.name=joint"])
    assert calls.count("test") == 1 and calls[-1] == "test"
    assert calls[:-1] and set(calls[:-1]) == {"valid"}
    assert outcome.stages[0]["name"] == "joint"
    assert (outcome.run_dir / "models" / "models.json").is_file()


class _Recorder:
    """A plugin object implementing the lifecycle hooks."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    from mtrec import hookimpl as _hookimpl

    @_hookimpl
    def mtrec_on_run_start(self, run):
        self.events.append(("start", run.run_id))

    @_hookimpl
    def mtrec_on_stage_end(self, run, stage, metrics):
        self.events.append(("stage", stage, metrics["best_epoch"]))

    @_hookimpl
    def mtrec_on_run_end(self, run, status, metrics):
        self.events.append(("end", status, metrics.get("test/average/ndcg@10")))


def test_lifecycle_hooks_see_start_stages_and_end(tmp_path):
    plugins = Plugins().load()
    recorder = _Recorder()
    plugins.register_module(recorder, name="recorder")
    outcome = execute_run(resolve(plugins.catalogue, "sasrec", quick=True, overrides=[*TINY, "transfer.name=joint"]),
                          plugins, progress=False, output_root=tmp_path)
    assert [e[0] for e in recorder.events] == ["start", "stage", "end"]
    assert recorder.events[1][1] == "joint" and recorder.events[1][2] >= 1
    assert recorder.events[2][1:] == ("finished", outcome.test.get("ndcg@10"))


def test_failed_run_is_reported_and_a_raising_hook_is_named(tmp_path, monkeypatch):
    from mtrec.builtins.transfer import Joint
    from mtrec.errors import PluginError

    plugins = Plugins().load()
    recorder = _Recorder()
    plugins.register_module(recorder, name="recorder")
    monkeypatch.setattr(Joint, "execute", lambda self, run: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    with pytest.raises(RuntimeError, match="disk on fire"):
        execute_run(resolve(plugins.catalogue, "sasrec", quick=True, overrides=[*TINY, "transfer.name=joint"]),
                    plugins, progress=False, output_root=tmp_path)
    assert recorder.events[-1] == ("end", "failed", None)

    class Raising:
        @_Recorder._hookimpl
        def mtrec_on_run_start(self, run):
            raise ValueError("bad token")

    plugins.register_module(Raising(), name="raising-plugin")
    with pytest.raises(PluginError, match="plugin 'raising-plugin' raised inside mtrec_on_run_start: ValueError: bad token"):
        execute_run(resolve(plugins.catalogue, "sasrec", quick=True, overrides=TINY), plugins, progress=False,
                    output_root=tmp_path)


def test_target_and_source_domains(plugins, tmp_path, monkeypatch):
    """Targets are what is validated and tested; a target outside the sources is zero-shot."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    original = RunContext.evaluate

    def spy(self, models, split, domains=None):
        report = original(self, models, split, domains)
        seen.append((split, tuple(sorted(set(report.metrics) - {"average"}))))
        return report

    monkeypatch.setattr(RunContext, "evaluate", spy)
    from mtrec.builtins import sasrec

    trained_on: list[list[int]] = []
    original_tensors = sasrec.SASRec.train_tensors

    def tensors_spy(self, run, domains):
        trained_on.append(list(domains))
        return original_tensors(self, run, domains)

    monkeypatch.setattr(sasrec.SASRec, "train_tensors", tensors_spy)
    outcome = _run(plugins, tmp_path, ["transfer.name=joint", "domains.targets=[Office]",
                                        "domains.sources=[Scientific, Arts]"])
    assert set(outcome.test.metrics) == {"Office", "average"}
    assert {names for _, names in seen} == {("Office",)}
    assert trained_on == [[0, 1]]  # Scientific, Arts: Office's training data never seen


def test_unknown_target_domain_is_named(plugins, tmp_path):
    from mtrec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"domains.targets: unknown domain\(s\) 'Books'.*Scientific, Arts, Office"):
        _run(plugins, tmp_path, ["domains.targets=[Books]"])


def test_training_loss_of_every_epoch_reaches_the_registry(plugins, tmp_path):
    from mtrec.registry import open_registry

    registry = open_registry(f"sqlite:///{tmp_path / 'registry.db'}", runs_root=tmp_path / "runs")
    resolved = resolve(plugins.catalogue, "sasrec", quick=True,
                       overrides=[*TINY, "transfer.name=joint", "training.epochs=3", "training.eval_every=2"])
    outcome = execute_run(resolved, plugins, registry=registry, progress=False, output_root=tmp_path / "runs")
    run_id = outcome.run_dir.name
    rows = sorted(registry.metrics([run_id], split="train"), key=lambda m: m["step"])
    history = outcome.stages[0]["history"]
    # one loss row per epoch, validated or not, equal to the loss the stage reports
    assert [(m["stage"], m["domain"], m["name"], m["step"]) for m in rows] == [
        ("joint", "average", "loss", e) for e in (1, 2, 3)]
    assert [m["value"] for m in rows] == pytest.approx([h["loss"] for h in history])
    assert sorted({m["step"] for m in registry.metrics([run_id], split="valid")}) == [2, 3]
