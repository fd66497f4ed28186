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
