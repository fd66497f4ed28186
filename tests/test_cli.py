"""The command line: clear errors with exit code 2, plugin loading, listings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtrec.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--plugin", "nope"], "unknown recipe 'nope'"),
        (["run", "--plugin", "sasrec", "--set", "training.epoch=3"], "training.epoch: unknown key"),
        (["run", "--plugin", "sasrec", "--set", "training.epochs"], "expected KEY=VALUE"),
        (["run", "--plugin", "sasrec", "--set", "encoder.name=gru"], "unknown encoder 'gru'"),
        (["run", "--plugin", "sasrec", "--dataset", "/no/such/place"], "/no/such/place"),
        (["run", "--plugin", "sasrec", "--config", "/no/such.yaml"], "/no/such.yaml: config file not found"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_malformed_dataset_names_file_and_line_and_caches_nothing(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "Broken.item.json").write_text('{"1": {"title": "a"}, "2": {"title": "b"}}')
    (folder / "Broken.inter.json").write_text('{"0": [1, 2, 1],\n "1": [2, 1, ')  # truncated on line 2
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: broken\nsources:\n  - format: lcrec\n    path: {folder}\n    domain: B\n")
    cache = Path(os.environ["MTREC_CACHE_DIR"]) / "datasets"
    before = set(cache.iterdir()) if cache.exists() else set()
    result = invoke("data", "stats", str(spec))
    assert result.exit_code == 2
    assert "Broken.inter.json" in result.output and "line 2" in result.output
    after = set(cache.iterdir()) if cache.exists() else set()
    assert after == before  # nothing half-written


def test_unknown_item_in_sequence_is_named(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "D.item.json").write_text('{"1": {"title": "a"}, "2": {"title": "b"}}')
    (folder / "D.inter.json").write_text('{"0": [1, 2, 7]}')
    result = invoke("data", "stats", str(folder))
    assert result.exit_code == 2
    assert "7" in result.output and "D.inter.json" in result.output


def test_data_stats_of_bundled_dataset():
    result = invoke("data", "stats", "--format", "json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert [d["domain"] for d in stats["domains"]] == ["Scientific", "Arts", "Office"]
    assert all(d["test_targets"] == d["users"] for d in stats["domains"])


def test_components_list_shows_builtins_with_their_plugin():
    result = invoke("components", "list", "--format", "json")
    rows = json.loads(result.output)
    names = {(r["kind"], r["name"]): r["plugin"] for r in rows}
    assert names[("encoder", "sasrec")] == "mtrec"
    assert names[("recipe", "sasrec")] == "mtrec"
    assert ("transfer", "joint") in names and ("decoder", "topk") in names


def _run_cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "mtrec", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture()
def broken_plugin_path(tmp_path: Path) -> Path:
    """A distribution whose entry point names a module that raises on import."""
    dist = tmp_path / "mtrec_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mtrec-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mtrec.plugins]\nbroken = mtrec_broken_mod\n")
    (tmp_path / "mtrec_broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    return tmp_path


def test_broken_plugin_is_listed_with_its_error_and_others_still_load(broken_plugin_path):
    env = {"PYTHONPATH": str(broken_plugin_path)}
    listed = _run_cli(["plugins", "list"], env)
    assert listed.returncode == 0, listed.stderr
    line = next(l for l in listed.stdout.splitlines() if l.startswith("broken"))
    assert "mtrec-broken" in line and "FAILED: RuntimeError: boom at import" in line
    components = _run_cli(["components", "list"], env)
    assert components.returncode == 0 and "sasrec" in components.stdout


def test_load_plugins_allow_list(broken_plugin_path):
    listed = _run_cli(["plugins", "list"], {"PYTHONPATH": str(broken_plugin_path), "MTREC_LOAD_PLUGINS": ""})
    assert "broken" not in listed.stdout and "mtrec" in listed.stdout


def test_debug_shows_the_traceback():
    quiet = _run_cli(["run", "--plugin", "nope"], {})
    loud = _run_cli(["--debug", "run", "--plugin", "nope"], {})
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "ConfigError" in loud.stderr


def test_without_progress_bars_each_epoch_is_one_log_line(tmp_path):
    from ops_helpers import TINY_SETTINGS, run_args, write_tiny_dataset

    spec = write_tiny_dataset(tmp_path / "tiny")
    settings = [s for s in TINY_SETTINGS if not s.startswith("training.epochs")] + ["training.epochs=2"]
    args = run_args(spec, "--no-registry", settings=settings)
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 0, plain.output
    lines = [line for line in plain.output.splitlines() if " stage " in line and "epoch" in line]
    # one line per epoch of each per-domain stage (domains A and B), with the loss and the validation
    assert [line.split(" stage ", 1)[1].split("  ")[0] for line in lines] == [
        "single:A: epoch 1/2", "single:A: epoch 2/2", "single:B: epoch 1/2", "single:B: epoch 2/2"]
    assert all("loss " in line and "val ndcg@10 " in line for line in lines)
    barred = CliRunner().invoke(main, [a if a != "--no-progress" else "--progress" for a in args])
    assert barred.exit_code == 0, barred.output
    assert " stage single:A: epoch" not in barred.output  # bars instead of lines, never both
