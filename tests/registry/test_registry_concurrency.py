"""Many processes writing at once lose nothing (SQLite in WAL mode, PostgreSQL)."""

from __future__ import annotations

import importlib
import multiprocessing
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

N_PROCS = 8
N_RUNS = 3
N_ROWS = 200
BATCH = 20


def _worker_module():
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)  # spawned children inherit sys.path
    return importlib.import_module("_registry_worker")


@pytest.fixture(scope="module")
def pool():
    """N spawned processes, shared by the backends (importing mtrec.registry in 8 fresh
    interpreters is the slow part); a barrier starts each batch of tasks together."""
    worker = _worker_module()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    with ctx.Pool(N_PROCS, initializer=worker.init, initargs=(barrier,)) as p:
        yield worker, p


def test_concurrent_writers_lose_no_row(registry_url, tmp_path, pool):
    worker, p = pool
    results = p.starmap(
        worker.write_runs, [(registry_url, w, N_RUNS, N_ROWS, BATCH, str(tmp_path)) for w in range(N_PROCS)],
        chunksize=1,
    )
    assert len({pid for pid, _ in results}) == N_PROCS  # really N processes at once
    results = [ids for _, ids in results]
    ids = [rid for ids in results for rid in ids]
    assert len(ids) == len(set(ids)) == N_PROCS * N_RUNS

    from mtrec.registry import open_registry

    with open_registry(registry_url) as reg:
        runs = reg.list_runs()
        assert sorted(r["id"] for r in runs) == sorted(ids)
        assert {r["status"] for r in runs} == {"finished"}
        for rid in ids[:: N_RUNS]:
            run = reg.get_run(rid)
            assert [m["step"] for m in run["metrics"]] == list(range(N_ROWS))
            assert reg.artifact_path(rid, "identifier").exists()

    engine = create_engine(registry_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(text("SELECT COUNT(*) FROM metrics")).scalar()
            per_run = conn.execute(text(
                "SELECT run_id, COUNT(*), COUNT(DISTINCT step) FROM metrics GROUP BY run_id")).all()
            n_art = conn.execute(text("SELECT COUNT(*) FROM artifacts")).scalar()
            n_comp = conn.execute(text("SELECT COUNT(*) FROM components")).scalar()
    finally:
        engine.dispose()
    assert total == N_PROCS * N_RUNS * N_ROWS
    assert sorted(per_run) == sorted((rid, N_ROWS, N_ROWS) for rid in ids)
    assert n_art == n_comp == N_PROCS * N_RUNS
