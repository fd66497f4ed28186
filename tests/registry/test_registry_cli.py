"""``mtrec runs ...`` through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json

import click
import pytest
from click.testing import CliRunner

from mtrec.errors import UserError
from mtrec.registry import open_registry
from mtrec.registry.cli import runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def populated(reg, start_kwargs, test_rows, run_dir):
    """Three runs: gmc and sasrec finished on 'tiny', one failed on 'other'."""
    ids = {}
    for name, recipe, seed in (("a", "gmc", 0.0), ("b", "sasrec", 0.05)):
        rid = reg.start_run(**start_kwargs(name=name, recipe=recipe))
        reg.log_metrics(rid, test_rows(seed))
        reg.log_metrics(rid, [{"stage": "joint", "split": "valid", "domain": "average", "name": "ndcg", "k": 10,
                               "value": 0.01 * e, "step": e} for e in range(4)])
        f = run_dir(rid) / "identifier" / f"{name}.bin"
        f.parent.mkdir()
        f.write_bytes(name.encode() * 64)
        reg.log_artifact(rid, "identifier", f)
        reg.set_status(rid, "finished")
        ids[name] = rid
    rid = reg.start_run(**start_kwargs(name=None, recipe="gmc", dataset_name="other"))
    reg.set_status(rid, "failed", error="Traceback ...\nRuntimeError: CUDA out of memory")
    ids["failed"] = rid
    return ids


def invoke(url, *args, input=None):
    result = CliRunner().invoke(runs, [*args, "--registry", url], input=input, catch_exceptions=False)
    return result


def test_list(registry_url, populated):
    out = invoke(registry_url, "list")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "created", "(UTC)", "status"]
    assert len(lines) == 2 + 3
    assert lines[2].startswith(populated["failed"])  # newest first
    row_b = next(line for line in lines if line.startswith(populated["b"]))
    assert "0.3500" in row_b  # test ndcg@10 on "average" (test_rows: 0.3 + seed 0.05)
    row_a = next(line for line in lines if line.startswith(populated["a"]))
    assert "0.3000" in row_a and "finished" in row_a and "gmc" in row_a

    data = json.loads(invoke(registry_url, "list", "--format", "json", "--recipe", "gmc").stdout)
    assert [r["id"] for r in data] == [populated["failed"], populated["a"]]
    data = json.loads(invoke(registry_url, "list", "--format", "json", "--status", "finished",
                             "--dataset", "tiny").stdout)
    assert {r["id"] for r in data} == {populated["a"], populated["b"]}
    assert "no runs match" in invoke(registry_url, "list", "--recipe", "nope").stdout
    assert invoke(registry_url, "list", "--status", "bogus").exit_code == 2  # click's own usage error


def test_show(registry_url, populated):
    out = invoke(registry_url, "show", populated["a"][:6])
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert populated["a"] in text and "gmc" in text and "finished" in text
    assert "components" in text and "semantic" in text
    assert "test metrics, stage final" in text and "valid metrics, stage joint, step 3" in text
    assert "recall@10" in text and "mrr" in text
    assert "artifacts" in text and "identifier" in text

    run = json.loads(invoke(registry_url, "show", populated["failed"], "--format", "json").stdout)
    assert run["status"] == "failed" and "CUDA out of memory" in run["error"]
    assert run["config"]["trainer"]["epochs"] == 3
    assert "CUDA out of memory" in invoke(registry_url, "show", populated["failed"]).stdout


def test_compare_with_plot(registry_url, populated, tmp_path):
    png = tmp_path / "plots" / "cmp.png"
    out = invoke(registry_url, "compare", populated["a"], populated["b"], "--metric", "ndcg@10",
                 "--metric", "mrr", "--plot", str(png))
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    legend = next(line for line in lines if line.startswith("[1]"))
    assert legend.split()[:3] == ["[1]", populated["a"], "gmc"]
    assert next(line for line in lines if line.startswith("[2]")).split()[:3] == ["[2]", populated["b"], "sasrec"]
    header = next(line for line in lines if line.startswith("domain"))
    assert header.split() == ["domain", "ndcg@10", "[1]", "ndcg@10", "[2]", "mrr", "[1]", "mrr", "[2]"]
    body = lines[lines.index(header) + 2:]
    assert [row.split()[0] for row in body] == ["books", "movies", "average"]
    assert body[-1].split()[1:] == ["0.3000", "0.3500", "0.3000", "0.3500"]
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000

    data = json.loads(invoke(registry_url, "compare", populated["a"], populated["b"], "--format", "json").stdout)
    assert data["metrics"] == ["recall@10", "ndcg@10", "mrr", "hr@10"]
    assert data["domains"]["books"][populated["b"]]["ndcg@10"] == pytest.approx(0.15)

    # validation curves: the latest step of the stage
    data = json.loads(invoke(registry_url, "compare", populated["a"], "--split", "valid", "--format", "json").stdout)
    assert data["domains"]["average"][populated["a"]]["ndcg@10"] == pytest.approx(0.03)

    rows = list(csv.DictReader(io.StringIO(invoke(
        registry_url, "compare", populated["a"], populated["b"], "--metric", "mrr", "--format", "csv").stdout)))
    assert len(rows) == 3 * 2 and rows[0].keys() == {"domain", "run_id", "metric", "value"}

    bad = invoke(registry_url, "compare", populated["a"], "--metric", "ndcg@99")
    assert bad.exit_code == 2 and "ndcg@99" in bad.stderr
    bad = invoke(registry_url, "compare", populated["a"], "--metric", "ndcg@@")
    assert bad.exit_code == 2 and "bad metric" in bad.stderr
    bad = invoke(registry_url, "compare", populated["failed"])
    assert bad.exit_code == 2 and "has test metrics" in bad.stderr


def test_export(registry_url, populated, tmp_path):
    out = invoke(registry_url, "export", populated["b"], "--format", "json")
    assert out.exit_code == 0, out.output
    run = json.loads(out.stdout)
    assert run["id"] == populated["b"] and run["recipe"] == "sasrec"
    assert len(run["metrics"]) == 12 + 4 and run["artifacts"][0]["kind"] == "identifier"
    assert run["dataset_spec"]["domains"] == ["books", "movies"]

    target = tmp_path / "out" / "b.csv"
    out = invoke(registry_url, "export", populated["b"], "--format", "csv", "-o", str(target))
    assert out.exit_code == 0 and out.stdout == ""
    rows = list(csv.DictReader(target.open()))
    assert list(rows[0]) == ["run_id", "stage", "split", "domain", "name", "k", "value", "step"]
    assert len(rows) == 16
    assert rows[0] == {"run_id": populated["b"], "stage": "final", "split": "test", "domain": "books",
                       "name": "recall", "k": "10", "value": "0.15", "step": ""}
    mrr = next(r for r in rows if r["name"] == "mrr")
    assert mrr["k"] == ""
    assert invoke(registry_url, "export", populated["b"]).exit_code == 2  # --format is required


def test_delete(registry_url, populated, run_dir):
    out = invoke(registry_url, "delete", populated["a"], input="n\n")
    assert out.exit_code == 1 and "Aborted" in out.output
    assert len(json.loads(invoke(registry_url, "list", "--format", "json").stdout)) == 3

    out = invoke(registry_url, "delete", populated["a"], input="y\n")
    assert out.exit_code == 0 and f"deleted run {populated['a']}" in out.stdout
    folder_b = run_dir(populated["b"])
    (folder_b / "checkpoints").mkdir()
    (folder_b / "checkpoints" / "joint.pt").write_bytes(b"state")
    (folder_b / "config.json").write_text("{}")
    (folder_b / "metrics.json").write_text("{}")
    out = invoke(registry_url, "delete", populated["b"], "--delete-files", input="y\n")
    assert out.exit_code == 0, out.output
    assert f"and its folder {folder_b}?" in out.output  # the prompt names what goes
    assert f"and its folder {folder_b}" in out.stdout
    assert (run_dir(populated["a"]) / "identifier" / "a.bin").exists()  # deleted without --delete-files
    assert not folder_b.exists()  # the whole run folder, not only its artifacts
    assert folder_b.parent.is_dir()
    out = invoke(registry_url, "delete", populated["failed"], "--yes", "--delete-files")
    assert out.exit_code == 0 and "it had no folder" in out.stdout
    assert json.loads(invoke(registry_url, "list", "--format", "json").stdout) == []


def test_tag(registry_url, populated):
    out = invoke(registry_url, "tag", populated["a"], "paper", "best")
    assert out.exit_code == 0 and out.stdout.strip() == f"{populated['a']}: paper, best"
    data = json.loads(invoke(registry_url, "list", "--tag", "paper", "--format", "json").stdout)
    assert [r["id"] for r in data] == [populated["a"]]
    out = invoke(registry_url, "tag", populated["a"], "paper", "--remove")
    assert out.stdout.strip() == f"{populated['a']}: best"


def test_where(registry_url, monkeypatch, tmp_path):
    from mtrec.registry import mask_url

    out = invoke(registry_url, "where")
    assert out.exit_code == 0 and out.stdout.strip() == mask_url(registry_url)
    out = invoke(registry_url, "where", "-v")
    assert "revision  0003" in out.stdout and "runs      0" in out.stdout

    monkeypatch.setenv("MTREC_HOME", str(tmp_path / "home"))
    out = CliRunner().invoke(runs, ["where"], catch_exceptions=False)
    assert out.stdout.strip() == f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    assert not (tmp_path / "home" / "registry.db").exists()  # `where` creates nothing
    monkeypatch.setenv("MTREC_REGISTRY_URL", "postgresql+psycopg://u:pw@db:5432/reg")
    out = CliRunner().invoke(runs, ["where"], catch_exceptions=False)
    assert out.stdout.strip() == "postgresql+psycopg://u:***@db:5432/reg"
    # the group's --registry applies to its commands
    out = CliRunner().invoke(runs, ["--registry", str(tmp_path / "g.db"), "where"], catch_exceptions=False)
    assert out.stdout.strip() == f"sqlite:///{tmp_path / 'g.db'}"


def test_unknown_id_exits_2_naming_it(registry_url, populated):
    for command in (["show"], ["export", "--format", "json"], ["delete", "--yes"], ["compare"], ["tag", "x"]):
        out = invoke(registry_url, command[0], "no-such-run", *command[1:])
        assert out.exit_code == 2, command
        assert out.stderr.startswith("error: ") and "no-such-run" in out.stderr, command
        assert out.stdout == "", command


def test_errors_propagate_under_a_parent_group(registry_url):
    """Under ``mtrec`` the UserError reaches the main group (which prints it, or the
    traceback with --debug), instead of being printed twice."""
    @click.group()
    def main():
        pass

    main.add_command(runs)
    result = CliRunner().invoke(main, ["runs", "show", "nope", "--registry", registry_url])
    assert isinstance(result.exception, UserError) and "nope" in str(result.exception)


def test_mtrec_main_cli(registry_url, populated):
    """The real ``mtrec`` command mounts the same ``runs`` group."""
    from mtrec import cli

    result = CliRunner().invoke(cli.main, ["runs", "show", "nope", "--registry", registry_url])
    assert result.exit_code == 2 and "nope" in result.stderr
    result = CliRunner().invoke(cli.main, ["runs", "list", "--registry", registry_url, "--format", "json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 3


def test_bad_registry_url_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = CliRunner().invoke(runs, ["list", "--registry", str(blocker / "reg.db")])
    assert out.exit_code == 2 and str(blocker) in out.stderr
    with open_registry(tmp_path / "ok.db"):
        pass
