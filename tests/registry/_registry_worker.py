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
                f = Path(artifact_dir) / f"{rid}.bin"
                f.write_bytes(rid.encode() * 10)
                reg.log_artifact(rid, "identifier", f)
                reg.set_status(rid, "finished")
            ids.append(rid)
    finally:
        reg.close()
    return os.getpid(), ids
