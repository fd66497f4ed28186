"""Many processes writing at once lose nothing (SQLite in WAL mode, PostgreSQL).

Besides appending rows, processes race on the *same* run row: adding and removing tags
(read-modify-write of one JSON list) and changing its status (``finished`` is final).  Without
row locks (PostgreSQL) or serialized writers (SQLite) these lose updates while each caller
is told it succeeded.
"""

from __future__ import annotations

import importlib
import multiprocessing
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

N_PROCS = 8
N_TAGS = 25  # per process: 200 tags added to one run, one transaction each
REMOVE_EVERY = 5
N_CLI_TAGS = 3  # per process, through `mtrec runs tag`
N_STATUS_RUNS = 40
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

    with open_registry(registry_url, runs_root=tmp_path) as reg:  # the workers' run folders are there
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


def _start(reg, **kwargs) -> str:
    return reg.start_run(name=None, recipe="r", config={}, config_hash="h", seed=0, device="cpu",
                         dataset_name="d", dataset_spec={}, dataset_fingerprint="f", components=[], **kwargs)


def test_concurrent_taggers_lose_no_tag(registry_url, pool):
    from mtrec.registry import open_registry

    worker, p = pool
    with open_registry(registry_url) as reg:
        rid = _start(reg, tags=["seed"])
    results = p.starmap(worker.add_tags, [(registry_url, rid, w, N_TAGS, REMOVE_EVERY) for w in range(N_PROCS)],
                        chunksize=1)
    assert len({pid for pid, _ in results}) == N_PROCS
    expected = {"seed"} | {t for _, kept in results for t in kept}
    assert len(expected) == 1 + N_PROCS * (N_TAGS - len(range(0, N_TAGS, REMOVE_EVERY)))
    with open_registry(registry_url) as reg:
        tags = reg.get_run(rid)["tags"]
    assert len(tags) == len(set(tags))  # no duplicates either
    lost, extra = expected - set(tags), set(tags) - expected
    assert not lost and not extra, f"{len(lost)} tags lost, {len(extra)} removed ones back"


def test_concurrent_cli_taggers_lose_no_tag(registry_url, pool):
    from mtrec.registry import open_registry

    worker, p = pool
    with open_registry(registry_url) as reg:
        rid = _start(reg)
    results = p.starmap(worker.tag_with_cli, [(registry_url, rid, w, N_CLI_TAGS) for w in range(N_PROCS)],
                        chunksize=1)
    expected = {t for _, mine in results for t in mine}
    assert len(expected) == N_PROCS * N_CLI_TAGS
    with open_registry(registry_url) as reg:
        assert set(reg.get_run(rid)["tags"]) == expected


def test_finished_is_never_overwritten_by_a_racing_status_change(registry_url, pool):
    from mtrec.registry import open_registry

    worker, p = pool
    with open_registry(registry_url) as reg:
        ids = [_start(reg) for _ in range(N_STATUS_RUNS)]
    results = p.starmap(worker.race_status, [(registry_url, ids, w) for w in range(N_PROCS)], chunksize=1)
    assert len({pid for pid, _ in results}) == N_PROCS
    finisher = results[0][1]
    assert set(finisher.values()) == {"ok"}  # finishing always succeeds
    with open_registry(registry_url) as reg:
        final = {rid: reg.get_run(rid) for rid in ids}
    overwritten = [rid for rid, run in final.items() if run["status"] != "finished"]
    assert not overwritten, f"{len(overwritten)} finished runs were overwritten by a racing 'interrupted'"
    assert all(run["error"] is None and run["ended_at"] is not None for run in final.values())
    # every interrupted call that came after the finish was refused, not silently applied
    for _, outcome in results[1:]:
        assert set(outcome) == set(ids)


def test_read_modify_write_transactions_lock_first(reg, start_kwargs):
    """How the races above are prevented, statement by statement: on SQLite the transaction
    takes the write lock before it reads (BEGIN IMMEDIATE), on PostgreSQL the row is read
    with SELECT ... FOR UPDATE."""
    from sqlalchemy import event

    rid = reg.start_run(**start_kwargs())
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()).upper())

    event.listen(reg._engine, "before_cursor_execute", record)
    try:
        for call in (lambda: reg.set_tags(rid, add=["a"]), lambda: reg.set_status(rid, "failed", error="x"),
                     lambda: reg.resume_run(rid)):
            seen.clear()
            call()
            selects = [s for s in seen if s.startswith("SELECT RUNS.")]
            assert selects, seen
            if reg._engine.dialect.name == "sqlite":
                assert seen[0] == "BEGIN IMMEDIATE", seen
            else:
                assert any(s.endswith("FOR UPDATE") for s in selects), selects
    finally:
        event.remove(reg._engine, "before_cursor_execute", record)
