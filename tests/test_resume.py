"""Resume after a crash: ``kill -9`` (or SIGTERM) during a run, then ``mtrec run --resume ID``.

The killed run is a real separate process that sends itself the signal at a chosen point
(tests/ops_fault_runner.py); the reference and the resumed runs run in this process.  On CPU a
resumed run must end with exactly the metrics of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import fcntl
import json
import signal
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mtrec.cli import main
from mtrec.paths import data_dir
from mtrec.registry import open_registry
from mtrec.training.checkpoint import load_checkpoint, resume_dir
from ops_helpers import REPO, mtrec, read_metrics, run_args, write_tiny_dataset

RUNNER = REPO / "tests" / "ops_fault_runner.py"
TWO_STAGES = ["--set", "transfer.name=unified-then-lora", "--set", "transfer.params.lora_epochs=2",
              "--set", "transfer.params.r=2", "--set", "training.epochs=2"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory) -> dict:
    """An uninterrupted two-stage run (unified, then one LoRA stage per domain)."""
    out = tmp_path_factory.mktemp("ref") / "metrics.json"
    result = CliRunner().invoke(main, run_args(spec, *TWO_STAGES, "--name", "reference", "--metrics-json", str(out)))
    assert result.exit_code == 0, result.output
    return read_metrics(out)


def _home() -> Path:
    return data_dir().parent  # the test session's MTREC_HOME is <root>/home


def _killed_run(spec: Path, fault: str, sig: str = "KILL") -> str:
    before = {p.name for p in (data_dir() / "runs").glob("*")} if (data_dir() / "runs").is_dir() else set()
    proc = mtrec(run_args(spec, *TWO_STAGES, "--name", f"killed-{fault}"), _home(), runner=RUNNER,
                 extra_env={"MTREC_TEST_FAULT": fault, "MTREC_TEST_SIGNAL": sig,
                            "MTREC_HOME": str(data_dir()), "MTREC_REGISTRY_URL": ""})
    if sig == "KILL":
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])
    else:  # SIGTERM is turned into an interruption the registry records; the CLI then exits non-zero
        assert proc.returncode != 0, proc.stderr[-3000:]
    new = sorted({p.name for p in (data_dir() / "runs").glob("*")} - before)
    assert len(new) == 1, new
    return new[0]


def _resume(run_id: str, tmp_path: Path) -> dict:
    out = tmp_path / "resumed.json"
    result = CliRunner().invoke(main, ["run", "--resume", run_id, "--no-progress", "--metrics-json", str(out)])
    assert result.exit_code == 0, result.output
    return read_metrics(out)


def _stage(metrics: dict, name: str) -> dict:
    return next(s for s in metrics["stages"] if s["name"] == name)


def test_kill9_in_second_stage_then_resume_gives_the_same_metrics(spec, reference, tmp_path):
    run_id = _killed_run(spec, "stage:lora:B:1")
    with open_registry() as reg:
        assert reg.get_run(run_id)["status"] == "running"  # SIGKILL: nobody could record the end
    files = sorted(p.name for p in resume_dir(data_dir() / "runs" / run_id).iterdir())
    # lora:B's epoch 0 (the unified model, scored) was logged and marked; its epoch 1 was checkpointed, not logged
    assert files == ["000-identifier.done.pt", "001-unified.done.pt", "002-lora_A.done.pt", "003-lora_B.last.pt",
                     "003-lora_B.logged"]
    last = load_checkpoint(resume_dir(data_dir() / "runs" / run_id) / "003-lora_B.last.pt")
    assert last["epoch"] == 1 and set(last) >= {"model", "optimizer", "rng", "best_state", "since_best", "history"}

    resumed = _resume(run_id, tmp_path)
    assert resumed["test"] == reference["test"]  # exactly, not approximately
    assert resumed["counts"] == reference["counts"]
    assert _stage(resumed, "lora:B")["resumed_from_epoch"] == 1
    assert _stage(resumed, "unified")["resumed_from_epoch"] == 0
    for name in ("unified", "lora:A", "lora:B"):
        assert _stage(resumed, name)["history"] == _stage(reference, name)["history"]
    with open_registry() as reg:
        run = reg.get_run(run_id)
        assert run["status"] == "finished" and run["error"] is None
        steps = [m["step"] for m in run["metrics"] if m["stage"] == "lora:B" and m["name"] == "ndcg" and m["k"] == 10
                 and m["domain"] == "average"]
        assert steps == [0, 1, 2]  # the unified model scored as epoch 0; the epoch before the kill not logged twice
        assert {a["kind"] for a in run["artifacts"]} == {"identifier", "models"}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["identifier", "stage:unified:1", "test"])
def test_kill9_anywhere_then_resume_gives_the_same_metrics(spec, reference, tmp_path, fault):
    run_id = _killed_run(spec, fault)
    resumed = _resume(run_id, tmp_path)
    assert resumed["test"] == reference["test"]
    if fault == "test":  # every stage had finished: all are loaded, none retrained
        assert all(s["resumed_from_epoch"] == 0 for s in resumed["stages"])


def test_sigterm_is_recorded_interrupted_then_resume_runs_and_finishes(spec, reference, tmp_path):
    run_id = _killed_run(spec, "stage:unified:1", sig="TERM")
    with open_registry() as reg:
        run = reg.get_run(run_id)
        assert run["status"] == "interrupted" and "SIGTERM" in run["error"]
    statuses: list[str] = []
    from mtrec.registry.store import Registry

    original = Registry.resume_run

    def spy(self, rid):
        previous = original(self, rid)
        statuses.extend([previous, self.get_run(rid)["status"]])
        return previous

    Registry.resume_run = spy
    try:
        resumed = _resume(run_id, tmp_path)
    finally:
        Registry.resume_run = original
    with open_registry() as reg:
        statuses.append(reg.get_run(run_id)["status"])
    assert statuses == ["interrupted", "running", "finished"]
    assert resumed["test"] == reference["test"]


def test_registry_resume_transitions(tmp_path):
    from mtrec.registry.errors import RegistryError

    with open_registry(tmp_path / "r.db") as reg:
        kwargs = dict(name=None, recipe="sasrec", config={}, config_hash="h", seed=1, device="cpu",
                      dataset_name="d", dataset_spec={}, dataset_fingerprint="f", components=[])
        stale = reg.start_run(**kwargs)  # a process that died without a word
        assert reg.resume_run(stale) == "interrupted"
        assert reg.get_run(stale)["status"] == "running" and reg.get_run(stale)["ended_at"] is None
        failed = reg.start_run(**kwargs)
        reg.set_status(failed, "failed", error="boom")
        assert reg.resume_run(failed) == "failed" and reg.get_run(failed)["error"] is None
        reg.set_status(failed, "finished")
        with pytest.raises(RegistryError, match="already finished"):
            reg.resume_run(failed)
        with pytest.raises(RegistryError, match="cannot become 'running'"):
            reg.set_status(failed, "running")


def test_resume_refuses_a_finished_run_a_running_one_and_extra_options(spec, reference, tmp_path):
    run_id = reference["run_id"]
    result = CliRunner().invoke(main, ["run", "--resume", run_id])
    assert result.exit_code == 2 and "already finished" in result.output
    result = CliRunner().invoke(main, ["run", "--resume", run_id, "--set", "training.epochs=9"])
    assert result.exit_code == 2 and "drop --set" in result.output
    result = CliRunner().invoke(main, ["run", "--resume", "no-such-run"])
    assert result.exit_code == 2 and "no run folder 'no-such-run'" in result.output
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2 and "--plugin NAME" in result.output

    # a run whose lock is held (its process is alive) cannot be resumed
    folder = data_dir() / "runs" / "20000101-000000-locked"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text((data_dir() / "runs" / run_id / "config.json").read_text())
    with open(folder / "run.lock", "w") as handle:
        handle.write("pid 12345 on elsewhere")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(main, ["run", "--resume", "20000101-000000-locked", "--no-registry"])
    assert result.exit_code == 2 and "is in progress (pid 12345 on elsewhere)" in result.output


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    """A save that dies half-way leaves the previous file intact and no temporary file behind."""
    from mtrec.training.checkpoint import atomic_torch_save

    path = tmp_path / "x.pt"
    atomic_torch_save({"v": torch.ones(2)}, path)

    def broken_save(obj, f, *a, **k):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"v": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["v"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_resume_files_hold_every_rng_and_the_stage_result(reference):
    folder = resume_dir(data_dir() / "runs" / reference["run_id"])
    done = load_checkpoint(folder / "001-unified.done.pt")
    assert done["name"] == "unified" and done["result"]["epochs_run"] == 2
    assert set(done["rng"][0]) >= {"random", "numpy", "torch"}
    assert not list(folder.glob("*.last.pt"))  # a finished stage keeps only its final state
    assert all(s["peak_rss_mb"] > 50 for s in reference["stages"])  # peak memory is reported per stage
    assert json.loads((folder.parent.parent / "run.json").read_text())["run_id"] == reference["run_id"]
