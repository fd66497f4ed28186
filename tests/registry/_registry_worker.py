"""Work done by the processes of test_registry_concurrency (a module of its own so that spawned
processes can import it whatever pytest's import mode)."""

from __future__ import annotations

import os

_barrier = None


def init(barrier) -> None:
    """Pool initializer: keep the barrier that makes every task start at the same time."""
    global _barrier
    _barrier = barrier
    import mtrec.registry  # noqa: F401  (import once per process, before the clock matters)


def write_runs(url: str, worker: int, n_runs: int, n_rows: int, batch: int, artifact_dir: str) -> tuple[int, list[str]]:
    from pathlib import Path

    from mtrec.registry import open_registry

    if _barrier is not None:
        _barrier.wait(timeout=60)  # all N tasks run at once, in N different processes
    reg = open_registry(url)  # all processes open (and maybe migrate) at once
    ids = []
    try:
        for r in range(n_runs):
            rid = reg.start_run(
                name=f"w{worker}-r{r}", recipe=f"recipe{worker % 3}", config={"worker": worker, "run": r},
                config_hash=f"{worker:04d}{r:04d}", seed=r, device="cpu", dataset_name="tiny",
                dataset_spec={"n": r}, dataset_fingerprint="fp",
                components=[{"kind": "model", "name": "m", "plugin": "p", "distribution": "d", "version": "1"}],
                host=f"host{worker}",
            )
            with reg.track(rid):
                rows = [{"stage": "joint", "split": "valid", "domain": f"d{i % 4}", "name": "ndcg", "k": 10,
                         "value": worker + r / 100 + i / 1e6, "step": i} for i in range(n_rows)]
                for start in range(0, n_rows, batch):
                    reg.log_metrics(rid, rows[start : start + batch])
                f = Path(artifact_dir) / rid / "identifier.bin"  # in the run's own folder
                f.parent.mkdir()
                f.write_bytes(rid.encode() * 10)
                reg.log_artifact(rid, "identifier", f)
                reg.set_status(rid, "finished")
            ids.append(rid)
    finally:
        reg.close()
    return os.getpid(), ids


def add_tags(url: str, run_id: str, worker: int, n_tags: int, remove_every: int) -> tuple[int, list[str]]:
    """Add ``n_tags`` tags of this worker to one run, one transaction each, then remove every
    ``remove_every``-th of them in one call; return the pid and the tags that must remain."""
    from mtrec.registry import open_registry

    if _barrier is not None:
        _barrier.wait(timeout=60)
    mine = [f"w{worker}-t{i}" for i in range(n_tags)]
    reg = open_registry(url)
    try:
        for tag in mine:
            assert tag in reg.set_tags(run_id, add=[tag])  # what it reports is what it wrote
        gone = mine[::remove_every]
        now = reg.set_tags(run_id, remove=gone)
        assert not set(gone) & set(now)
    finally:
        reg.close()
    return os.getpid(), [t for t in mine if t not in gone]


def tag_with_cli(url: str, run_id: str, worker: int, n_tags: int) -> tuple[int, list[str]]:
    """``mtrec runs tag ID TAG`` once per tag, as a user (or a sweep script) would."""
    from click.testing import CliRunner

    from mtrec.registry.cli import runs

    if _barrier is not None:
        _barrier.wait(timeout=60)
    mine = [f"cli{worker}-{i}" for i in range(n_tags)]
    for tag in mine:
        result = CliRunner().invoke(runs, ["tag", run_id[:8], tag, "--registry", url])
        assert result.exit_code == 0 and tag in result.output, result.output
    return os.getpid(), mine


def race_status(url: str, run_ids: list[str], worker: int) -> tuple[int, dict[str, str]]:
    """Worker 0 finishes every run while the others mark the same runs interrupted.

    ``finished`` is final: an ``interrupted`` that reaches a finished run must be refused,
    never written over it.  Returns, per run, what this worker's call did ("ok"/"refused").
    """
    from mtrec.registry import RegistryError, open_registry

    if _barrier is not None:
        _barrier.wait(timeout=60)
    reg = open_registry(url)
    outcome: dict[str, str] = {}
    try:
        for rid in run_ids:
            try:
                if worker == 0:
                    reg.set_status(rid, "finished")
                else:
                    reg.set_status(rid, "interrupted", error=f"worker {worker}")
                outcome[rid] = "ok"
            except RegistryError as exc:
                assert "is finished" in str(exc), exc
                outcome[rid] = "refused"
    finally:
        reg.close()
    return os.getpid(), outcome
