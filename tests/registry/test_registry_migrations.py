"""Schema migrations: empty -> head, revision 1 -> head with data kept, models == head."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, DateTime, bindparam, create_engine, inspect, text

from mtrec.registry import RegistryError, open_registry
from mtrec.registry.migrate import alembic_config, current_revision, head_revision, revisions, script_revisions
from mtrec.registry.models import Base

REV1 = "0001"


@pytest.fixture
def engine(registry_url):
    eng = create_engine(registry_url)
    yield eng
    eng.dispose()


def _upgrade(engine, target: str) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), target)


def _revision(engine) -> str | None:
    with engine.connect() as conn:
        return current_revision(conn)


def test_three_revisions():
    assert revisions() == ["0001", "0002", "0003"]
    assert head_revision() == "0003"
    # the constants that let an up-to-date registry open without alembic match the scripts
    assert script_revisions() == revisions()


def test_empty_database_to_head(registry_url, engine):
    assert _revision(engine) is None
    with open_registry(registry_url) as reg:
        assert reg.revision == head_revision()
    insp = inspect(engine)
    assert {"runs", "components", "metrics", "artifacts", "alembic_version"} <= set(insp.get_table_names())
    assert {"tags", "pid"} <= {c["name"] for c in insp.get_columns("runs")}
    indexes = {ix["name"]: ix["column_names"] for ix in insp.get_indexes("metrics")}
    assert indexes == {"ix_metrics_run_split_domain": ["run_id", "split", "domain"]}
    # opening again does nothing
    with open_registry(registry_url) as reg:
        assert reg.revision == head_revision()


def test_models_match_the_migrations(registry_url, engine):
    open_registry(registry_url).close()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_from_revision_1_keeps_the_data(registry_url, engine):
    _upgrade(engine, REV1)
    assert _revision(engine) == REV1
    assert "tags" not in {c["name"] for c in inspect(engine).get_columns("runs")}

    created = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    insert_run = text(
        "INSERT INTO runs (id, name, recipe, status, created_at, started_at, ended_at, host, device, seed, "
        "config, config_hash, dataset_name, dataset_spec, dataset_fingerprint, error) VALUES "
        "(:id, 'old', 'sasrec', 'finished', :created, :created, :ended, 'h1', 'cuda:0', 3, "
        ":config, 'abc', 'tiny', :spec, 'fp', NULL)"
    ).bindparams(
        bindparam("created", type_=DateTime(timezone=True)),
        bindparam("ended", type_=DateTime(timezone=True)),
        bindparam("config", type_=JSON),
        bindparam("spec", type_=JSON),
    )
    with engine.begin() as conn:
        conn.execute(insert_run, {"id": "oldrun000001", "created": created,
                                  "ended": created + dt.timedelta(minutes=5),
                                  "config": {"lr": 0.1}, "spec": {"domains": ["a", "b"]}})
        conn.execute(text(
            "INSERT INTO metrics (run_id, stage, split, domain, name, k, value, step) VALUES "
            "('oldrun000001', 'final', 'test', 'average', 'ndcg', 10, 0.25, NULL), "
            "('oldrun000001', 'final', 'test', 'a', 'mrr', NULL, 0.5, NULL)"
        ))
        conn.execute(text(
            "INSERT INTO components (run_id, position, kind, name, plugin, distribution, version) VALUES "
            "('oldrun000001', 0, 'model', 'sasrec', 'sasrec', 'mtrec', '0.0.9')"
        ))

    with open_registry(registry_url) as reg:
        assert reg.revision == head_revision()
        run = reg.get_run("oldrun")
        assert run["id"] == "oldrun000001" and run["recipe"] == "sasrec" and run["status"] == "finished"
        assert run["config"] == {"lr": 0.1} and run["dataset_spec"] == {"domains": ["a", "b"]}
        assert run["created_at"] == created.isoformat()
        assert run["duration_s"] == 300
        assert run["tags"] == []
        assert run["pid"] is None and run["stale"] is False  # recorded before pids were
        assert [(m["domain"], m["name"], m["k"], m["value"]) for m in run["metrics"]] == [
            ("average", "ndcg", 10, 0.25), ("a", "mrr", None, 0.5)]
        assert run["components"][0]["version"] == "0.0.9"
        # and the upgraded database takes new runs
        assert reg.set_tags("oldrun", add=["legacy"]) == ["legacy"]
        assert [r["id"] for r in reg.list_runs(tag="legacy")] == ["oldrun000001"]

    indexes = {ix["name"] for ix in inspect(engine).get_indexes("metrics")}
    assert indexes == {"ix_metrics_run_split_domain"}


def test_downgrade_and_upgrade_again(registry_url, engine, start_kwargs):
    with open_registry(registry_url) as reg:
        rid = reg.start_run(**start_kwargs(tags=["x"]))
    _upgrade(engine, "head")  # no-op at head
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), REV1)
    assert _revision(engine) == REV1
    with open_registry(registry_url) as reg:
        assert reg.get_run(rid)["tags"] == []  # the column came back empty


def test_newer_database_is_refused(registry_url, engine):
    open_registry(registry_url).close()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RegistryError, match="revision '9999'.*newer mtrec"):
        open_registry(registry_url)
    with engine.connect() as conn:  # untouched
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"


def test_foreign_database_is_refused(registry_url, engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER PRIMARY KEY, what TEXT)"))
        conn.execute(text("INSERT INTO runs (id, what) VALUES (1, 'precious')"))
    with pytest.raises(RegistryError, match="not created by mtrec"):
        open_registry(registry_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT what FROM runs")).scalar() == "precious"
