"""`mtrec run` records into the registry; compare, recommend and artifact reuse read it back."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mtrec.cli import main
from mtrec.data.load import load_dataset, resolve_spec
from mtrec.plugins import get_plugins

TINY = ["--quick", "--set", "training.epochs=1", "--set", "encoder.params.hidden=16",
        "--set", "evaluation.valid_max_users=50"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('reg') / 'registry.db'}"
    runner = CliRunner()
    ids = []
    for extra in ([], ["--set", "transfer.name=joint"]):
        result = runner.invoke(main, ["run", "--plugin", "sasrec", "--registry", url, *TINY, *extra])
        assert result.exit_code == 0, result.output
        ids.append(result.output.split("\nrun ")[1].split()[0])
    return url, ids


def test_runs_are_recorded_with_config_components_and_metrics(two_runs):
    url, (a, b) = two_runs
    shown = CliRunner().invoke(main, ["runs", "show", a, "--registry", url, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    run = json.loads(shown.output)
    assert run["status"] == "finished" and run["recipe"] == "sasrec"
    assert run["config"]["encoder"]["params"]["hidden"] == 16
    assert {c["kind"]: c["name"] for c in run["components"]}["encoder"] == "sasrec"
    finals = [m for m in run["metrics"] if m["split"] == "test"]
    assert {m["domain"] for m in finals} == {"Scientific", "Arts", "Office", "average"}
    assert {a_["kind"] for a_ in run["artifacts"]} >= {"identifier", "models"}


def test_compare_writes_a_png(two_runs, tmp_path):
    url, ids = two_runs
    png = tmp_path / "cmp.png"
    result = CliRunner().invoke(main, ["runs", "compare", *ids, "--registry", url, "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "Office" in result.output and ids[0][:8] in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("which", [0, 1])
def test_recommend_answers_from_either_run(two_runs, which):
    url, ids = two_runs
    plugins = get_plugins()
    dataset = load_dataset(resolve_spec(None, plugins.formats), plugins.formats)
    office = dataset.domain_index("Office")
    history = [dataset.item_raw_id[i] for i in dataset.domain_items[office][:3]]
    result = CliRunner().invoke(main, ["recommend", "--run", ids[which], "--registry", url, "--domain", "Office",
                                       "--history", ",".join(history), "-k", "5", "--format", "json"])
    assert result.exit_code == 0, result.output
    recs = json.loads(result.output)
    assert len(recs) == 5
    office_raw = {dataset.item_raw_id[i] for i in dataset.domain_items[office]}
    assert all(r["item"] in office_raw for r in recs)
    assert all(r["title"] for r in recs)
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True)


def test_identifier_reuse_is_verified(two_runs, tmp_path):
    url, (a, _) = two_runs
    runner = CliRunner()
    ok = runner.invoke(main, ["run", "--plugin", "sasrec", "--registry", url, *TINY,
                              "--set", f"identifier.from_run={a}"])
    assert ok.exit_code == 0, ok.output
    shown = json.loads(runner.invoke(main, ["runs", "show", a, "--registry", url, "--format", "json"]).output)
    path = next(x["path"] for x in shown["artifacts"] if x["kind"] == "identifier")
    with open(f"{path}/atomic.json", "a") as fh:
        fh.write(" ")  # tamper with the artifact
    bad = runner.invoke(main, ["run", "--plugin", "sasrec", "--registry", url, *TINY,
                               "--set", f"identifier.from_run={a}"])
    assert bad.exit_code == 2 and "sha256" in bad.output
