"""The store API: runs, metrics, artifacts, statuses, listing, deletion, id prefixes."""

from __future__ import annotations

import datetime as dt
import math
import os

import pytest
from sqlalchemy import create_engine, text

from mtrec.errors import UserError
from mtrec.registry import Registry, RegistryError, open_registry
from mtrec.registry.store import default_url, file_digest, resolve_url


def test_round_trip(reg, start_kwargs, test_rows, run_dir):
    before = dt.datetime.now(dt.timezone.utc)
    rid = reg.start_run(**start_kwargs(host="worker-3"))
    assert len(rid) == 12 and all(c in "0123456789abcdef" for c in rid)

    run = reg.get_run(rid)
    assert run["status"] == "running" and run["ended_at"] is None and run["error"] is None
    assert run["name"] == "smoke" and run["recipe"] == "gmc" and run["seed"] == 7
    assert run["host"] == "worker-3" and run["device"] == "cpu"
    assert run["config"] == start_kwargs()["config"]
    assert run["config_hash"] == start_kwargs()["config_hash"]
    assert run["dataset_name"] == "tiny"
    assert run["dataset_spec"] == start_kwargs()["dataset_spec"]
    assert run["dataset_fingerprint"] == "f1" * 16
    assert run["components"] == start_kwargs()["components"]
    assert run["tags"] == [] and run["metrics"] == [] and run["artifacts"] == []
    created = dt.datetime.fromisoformat(run["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=5) <= created <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)

    valid = [{"stage": "joint", "split": "valid", "domain": "average", "name": "ndcg", "k": 10,
              "value": 0.1 * e, "step": e} for e in range(3)]
    reg.log_metrics(rid, valid)
    reg.log_metrics(rid, test_rows())
    reg.log_metrics(rid, [])
    # k and step may be left out; NaN survives (stored as NULL)
    reg.log_metrics(rid, [{"stage": "final", "split": "test", "domain": "average", "name": "loss",
                           "value": float("nan")}])

    ident = run_dir(rid) / "identifier"
    ident.mkdir()
    (ident / "codes.json").write_text('{"a": [1, 2]}')
    (ident / "sub").mkdir()
    (ident / "sub" / "w.bin").write_bytes(os.urandom(1000))
    info = reg.log_artifact(rid, "identifier", ident)
    assert info["path"] == str(ident.absolute())
    assert info["bytes"] == len('{"a": [1, 2]}') + 1000
    assert info["sha256"] == file_digest(ident)[0]
    model = run_dir(rid) / "model.pt"
    model.write_bytes(b"weights" * 100)
    info = reg.log_artifact(rid, "models", str(model))
    assert info["bytes"] == 700 and len(info["sha256"]) == 64

    reg.set_status(rid, "finished")
    run = reg.get_run(rid)
    assert run["status"] == "finished"
    assert run["ended_at"] is not None and run["duration_s"] >= 0
    got = [(m["stage"], m["split"], m["domain"], m["name"], m["k"], m["step"]) for m in run["metrics"]]
    want = [(r["stage"], r["split"], r["domain"], r["name"], r["k"], r["step"]) for r in valid + test_rows()]
    assert got[:-1] == want
    assert [m["value"] for m in run["metrics"][:-1]] == pytest.approx([r["value"] for r in valid + test_rows()])
    assert run["metrics"][-1]["k"] is None and math.isnan(run["metrics"][-1]["value"])
    assert [a["kind"] for a in run["artifacts"]] == ["identifier", "models"]

    assert reg.artifact_path(rid, "identifier") == ident.absolute()
    assert reg.artifact_path(rid, "models") == model.absolute()


def test_filtered_metric_query(reg, start_kwargs, test_rows):
    a = reg.start_run(**start_kwargs())
    b = reg.start_run(**start_kwargs())
    reg.log_metrics(a, test_rows(0.0))
    reg.log_metrics(b, test_rows(0.5))
    rows = reg.metrics([a, b], split="test", domain="average", name="ndcg", k=10)
    assert {r["run_id"]: r["value"] for r in rows} == {a: pytest.approx(0.3), b: pytest.approx(0.8)}
    assert len(reg.metrics(a, name="mrr", k=None)) == 3
    assert reg.metrics(a, split="valid") == []


def test_artifact_verification(reg, start_kwargs, run_dir):
    rid = reg.start_run(**start_kwargs())
    f = run_dir(rid) / "codes.bin"
    f.write_bytes(b"abc")
    reg.log_artifact(rid, "identifier", f)

    f.write_bytes(b"abd")  # same size, other content
    with pytest.raises(RegistryError, match="changed since it was recorded"):
        reg.artifact_path(rid, "identifier")
    assert reg.artifact_path(rid, "identifier", verify=False) == f

    # logging the same kind again replaces the record
    reg.log_artifact(rid, "identifier", f)
    assert reg.artifact_path(rid, "identifier") == f
    assert len(reg.get_run(rid)["artifacts"]) == 1

    f.unlink()
    with pytest.raises(RegistryError, match="missing"):
        reg.artifact_path(rid, "identifier")
    with pytest.raises(RegistryError, match=r"no artifact 'models' \(it has identifier\)"):
        reg.artifact_path(rid, "models")
    with pytest.raises(RegistryError, match="does not exist"):
        reg.log_artifact(rid, "models", run_dir(rid) / "nope.pt")


def test_status(reg, start_kwargs):
    rid = reg.start_run(**start_kwargs())
    reg.set_status(rid, "failed", error="boom")
    run = reg.get_run(rid)
    assert (run["status"], run["error"]) == ("failed", "boom") and run["ended_at"]
    reg.set_status(rid, "running")
    run = reg.get_run(rid)
    assert run["status"] == "running" and run["ended_at"] is None and run["error"] is None
    with pytest.raises(ValueError, match="unknown run status"):
        reg.set_status(rid, "done")
    with pytest.raises(RegistryError, match="no run 'zzz'"):
        reg.set_status("zzz", "finished")


def test_list_filters(reg, start_kwargs):
    a = reg.start_run(**start_kwargs(recipe="gmc", dataset_name="amazon"))
    b = reg.start_run(**start_kwargs(recipe="sasrec", dataset_name="amazon", tags=["baseline"]))
    c = reg.start_run(**start_kwargs(recipe="gmc", dataset_name="douban", name=None))
    reg.set_status(a, "finished")
    reg.set_status(b, "finished")
    reg.set_status(c, "failed", error="x")

    assert [r["id"] for r in reg.list_runs()] == [c, b, a]  # newest first
    assert [r["id"] for r in reg.list_runs(recipe="gmc")] == [c, a]
    assert [r["id"] for r in reg.list_runs(dataset="amazon")] == [b, a]
    assert [r["id"] for r in reg.list_runs(status="failed")] == [c]
    assert [r["id"] for r in reg.list_runs(recipe="gmc", status="finished")] == [a]
    assert [r["id"] for r in reg.list_runs(limit=2)] == [c, b]
    assert [r["id"] for r in reg.list_runs(tag="baseline")] == [b]
    assert reg.list_runs(recipe="nope") == []
    assert "config" not in reg.list_runs()[0] and "metrics" not in reg.list_runs()[0]
    with pytest.raises(RegistryError, match="unknown run status"):
        reg.list_runs(status="done")

    assert reg.set_tags(a, add=["best", "paper"]) == ["best", "paper"]
    assert reg.set_tags(a[:6], add=["best"], remove=["paper"]) == ["best"]
    assert [r["id"] for r in reg.list_runs(tag="best")] == [a]
    assert reg.count_runs() == 3


def test_delete_cascades(reg, registry_url, start_kwargs, test_rows, run_dir):
    keep = reg.start_run(**start_kwargs())
    gone = reg.start_run(**start_kwargs())
    files = {}
    for rid in (keep, gone):
        reg.log_metrics(rid, test_rows())
        files[rid] = run_dir(rid) / f"{rid}.bin"
        files[rid].write_bytes(rid.encode())
        reg.log_artifact(rid, "identifier", files[rid])

    assert reg.delete_run(gone) is None
    with pytest.raises(RegistryError, match=gone):
        reg.get_run(gone)
    assert files[gone].exists()  # files stay unless asked

    engine = create_engine(registry_url)
    try:
        with engine.connect() as conn:
            for table in ("metrics", "artifacts", "components"):
                n_gone = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE run_id = :r"), {"r": gone}).scalar()
                n_keep = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE run_id = :r"), {"r": keep}).scalar()
                assert n_gone == 0, table
                assert n_keep > 0, table
    finally:
        engine.dispose()

    other = reg.start_run(**start_kwargs())
    with pytest.raises(RegistryError, match="not inside the run's own folder"):
        reg.log_artifact(other, "identifier", files[keep])  # another run's file is not this run's artifact
    assert reg.delete_run(keep, delete_files=True) == files[keep].parent
    assert not files[keep].parent.exists()
    assert files[gone].exists()
    assert reg.delete_run(other, delete_files=True) is None  # it never had a folder
    assert reg.list_runs() == []


def test_id_prefix_resolution(reg, start_kwargs):
    a = reg.start_run(**start_kwargs(run_id="20250101-120000-aaaaaa"))
    b = reg.start_run(**start_kwargs(run_id="20250101-120000-abbbbb"))
    c = reg.start_run(**start_kwargs(run_id="20250102-080000-cccccc"))
    assert reg.get_run("20250102")["id"] == c
    assert reg.get_run("20250101-120000-aa")["id"] == a
    assert reg.resolve(b) == b
    with pytest.raises(RegistryError, match="ambiguous.*20250101-120000-aaaaaa.*20250101-120000-abbbbb"):
        reg.get_run("20250101")
    # LIKE wildcards in the prefix are literal
    with pytest.raises(RegistryError, match="no run '2025%'"):
        reg.get_run("2025%")
    with pytest.raises(RegistryError, match="no run '2025____'"):
        reg.get_run("2025____")
    # writes need the exact id
    with pytest.raises(RegistryError, match="no run '20250102'"):
        reg.log_metrics("20250102", [])
    # explicit ids: unique and well-formed
    with pytest.raises(RegistryError, match="already exists"):
        reg.start_run(**start_kwargs(run_id=a))
    with pytest.raises(RegistryError, match="invalid run id"):
        reg.start_run(**start_kwargs(run_id="has space"))


def test_unknown_id_is_a_user_error(reg):
    with pytest.raises(RegistryError) as info:
        reg.get_run("deadbeef0000")
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    assert "deadbeef0000" in str(info.value)
    with pytest.raises(RegistryError, match="deadbeef0000"):
        reg.artifact_path("deadbeef0000", "identifier")
    with pytest.raises(RegistryError, match="deadbeef0000"):
        reg.delete_run("deadbeef0000")


def test_bad_metric_rows(reg, start_kwargs):
    rid = reg.start_run(**start_kwargs())
    with pytest.raises(ValueError, match="missing.*value"):
        reg.log_metrics(rid, [{"stage": "final", "split": "test", "domain": "a", "name": "ndcg", "k": 10}])
    with pytest.raises(ValueError, match="unknown keys.*'kk'"):
        reg.log_metrics(rid, [{"stage": "final", "split": "test", "domain": "a", "name": "ndcg", "kk": 10,
                               "value": 1.0}])
    with pytest.raises(ValueError, match="component 0"):
        reg.start_run(**start_kwargs(components=[{"kind": "model"}]))
    assert reg.get_run(rid)["metrics"] == []


# ------------------------------------------------------------------ URLs and errors


def test_default_url_and_env(monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("MTREC_HOME", str(home))
    assert default_url() == f"sqlite:///{home / 'registry.db'}"
    with open_registry() as reg:
        assert reg.sqlite_path == home / "registry.db"
        assert (home / "registry.db").exists()
        journal = reg._engine.connect().exec_driver_sql("PRAGMA journal_mode").scalar()
        assert journal == "wal"

    other = tmp_path / "elsewhere" / "reg.db"
    monkeypatch.setenv("MTREC_REGISTRY_URL", f"sqlite:///{other}")
    with open_registry() as reg:
        assert reg.sqlite_path == other and other.exists()
    # an explicit URL wins; a plain path means a SQLite file
    plain = tmp_path / "plain.db"
    assert resolve_url(plain) == f"sqlite:///{plain}"
    with open_registry(plain) as reg:
        assert reg.url == f"sqlite:///{plain}"


def test_password_is_masked():
    reg = Registry("postgresql+psycopg://alice:s3cret@db.example:5432/mtrec", migrate_schema=False)
    try:
        assert reg.url == "postgresql+psycopg://alice:***@db.example:5432/mtrec"
    finally:
        reg.close()
    for scheme in ("postgresql", "postgres"):  # plain URLs use psycopg 3, not psycopg2
        reg = Registry(f"{scheme}://alice:s3cret@db.example/mtrec", migrate_schema=False)
        assert reg.url == "postgresql+psycopg://alice:***@db.example/mtrec"
        reg.close()


def test_unreachable_postgres_names_the_url():
    with pytest.raises(RegistryError) as info:
        open_registry("postgresql+psycopg://alice:s3cret@127.0.0.1:1/mtrec?connect_timeout=3")
    msg = str(info.value)
    assert "postgresql+psycopg://alice:***@127.0.0.1:1/mtrec" in msg
    assert "s3cret" not in msg


def test_unwritable_sqlite_path_names_the_path(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(RegistryError, match=f"{blocker}.*a file is in the way"):
        open_registry(f"sqlite:///{blocker / 'registry.db'}")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_names_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(RegistryError, match=str(ro / "registry.db")):
            open_registry(f"sqlite:///{ro / 'registry.db'}")
    finally:
        ro.chmod(0o700)


def test_bad_urls():
    with pytest.raises(RegistryError, match="not a database URL"):
        open_registry("://nothing")
    with pytest.raises(RegistryError, match="nosuchdb"):
        open_registry("nosuchdb://u@h/x")
    with pytest.raises(RegistryError, match="not a database URL"):
        open_registry("postgresql+psycopg://u@h:notaport/x")


def test_read_only_sqlite_database(tmp_path):
    """Opening a read-only registry works for reading; writing is a RegistryError naming it."""
    db = tmp_path / "ro.db"
    open_registry(db).close()
    with open_registry(f"sqlite:///file:{db}?mode=ro&uri=true") as reg:
        assert reg.list_runs() == []
        with pytest.raises(RegistryError, match="readonly database"):
            reg.start_run(name=None, recipe="r", config={}, config_hash="h", seed=0, device="cpu",
                          dataset_name="d", dataset_spec={}, dataset_fingerprint="f", components=[])
    with pytest.raises(RegistryError, match="cannot open the experiment registry.*missing.db"):
        open_registry(f"sqlite:///file:{tmp_path / 'missing.db'}?mode=ro&uri=true")
