"""Fixtures of the registry tests: one registry per test, on SQLite and on PostgreSQL.

PostgreSQL tests need a server: ``eval "$(bash .ci/postgres.sh)"`` starts a throwaway one
and exports ``MTREC_TEST_POSTGRES_URL`` (any ``postgresql+psycopg://`` URL of a role that
may create schemas in that database works).  Each test gets a schema of its own (the
connections' ``search_path``), dropped afterwards.
Without the variable the PostgreSQL variants are skipped with a message saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

PG_ENV = "MTREC_TEST_POSTGRES_URL"
PG_SKIP = f"PostgreSQL registry tests need {PG_ENV}; start a server with: eval \"$(bash .ci/postgres.sh)\""

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _registry_isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's registry: MTREC_HOME in a temp folder, no MTREC_REGISTRY_URL."""
    monkeypatch.setenv("MTREC_HOME", str(tmp_path_factory.mktemp("mtrec-home")))
    monkeypatch.delenv("MTREC_REGISTRY_URL", raising=False)


def _admin_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """``MTREC_TEST_POSTGRES_URL``, checked to answer (skips when unset)."""
    url = os.environ.get(PG_ENV, "").strip()
    if not url:
        pytest.skip(PG_SKIP)
    import psycopg

    try:
        with psycopg.connect(_admin_conninfo(url), autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"{PG_ENV} is set but the server does not answer: {exc}")
    return url


def make_postgres_schema(base_url: str) -> tuple[str, Any]:
    """Create a uniquely named schema; return a URL whose connections use only it, and a
    function that drops it.  (A schema per test is much faster than a database per test;
    the registry lives in whatever schema ``search_path`` names first.)"""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"mtrec_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_conninfo(base_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False), drop


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """The URL of an empty registry database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    url, drop = make_postgres_schema(request.getfixturevalue("postgres_base_url"))
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def reg(registry_url: str) -> Iterator[Any]:
    """An opened (migrated) registry on each backend."""
    from mtrec.registry import open_registry

    registry = open_registry(registry_url)
    try:
        yield registry
    finally:
        registry.close()


def run_kwargs(**overrides: Any) -> dict[str, Any]:
    """Arguments of ``Registry.start_run`` as the engine passes them."""
    kwargs: dict[str, Any] = {
        "name": "smoke",
        "recipe": "gmc",
        "config": {"recipe": "gmc", "trainer": {"epochs": 3, "lr": 0.001}, "seed": 7},
        "config_hash": "c0ffee" * 4,
        "seed": 7,
        "device": "cpu",
        "dataset_name": "tiny",
        "dataset_spec": {"name": "tiny", "domains": ["books", "movies"], "format": "jsonl"},
        "dataset_fingerprint": "f1" * 16,
        "components": [
            {"kind": "identifier", "name": "semantic", "plugin": "gmc", "distribution": "mtrec", "version": "0.1.0"},
            {"kind": "model", "name": "t5-small", "plugin": "gmc", "distribution": "mtrec", "version": "0.1.0"},
        ],
    }
    kwargs.update(overrides)
    return kwargs


DOMAINS = ("books", "movies", "average")


def final_rows(seed: float = 0.0) -> list[dict[str, Any]]:
    """Test-pass metric rows as the engine logs them (stage final, split test)."""
    rows = []
    for i, domain in enumerate(DOMAINS):
        for name, k in (("recall", 10), ("ndcg", 10), ("mrr", None), ("hr", 10)):
            rows.append({"stage": "final", "split": "test", "domain": domain, "name": name, "k": k,
                         "value": round(0.1 * (i + 1) + seed, 6), "step": None})
    return rows


@pytest.fixture
def run_dir() -> Any:
    """``run_dir(run_id)``: the run's own folder ``<data_dir()>/runs/<id>`` (created), where the
    registry accepts (and later reads and deletes) its artifacts."""
    from mtrec.paths import data_dir

    def make(run_id: str) -> Any:
        folder = data_dir() / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    return make


@pytest.fixture
def start_kwargs() -> Any:
    """``start_kwargs(**overrides)``: the arguments of ``start_run`` as the engine passes them."""
    return run_kwargs


@pytest.fixture
def test_rows() -> Any:
    """``test_rows(seed=0.0)``: the engine's final test metric rows for books, movies, average."""
    return final_rows
