"""``mtrec plugins new``: names, refusals (exit 2, nothing written), and a scaffold that installs and works."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from mtrec.cli import main
from mtrec.scaffold import plugin_names
from plugin_venv import child_env, fresh_venv, in_venv, mtrec, pip_install


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_names_derive_from_the_one_typed():
    names = plugin_names("mean-pool")
    assert (names.name, names.distribution, names.package, names.class_name) == (
        "mean-pool", "mtrec-mean-pool", "mtrec_mean_pool", "MeanPool")
    assert plugin_names("mtrec-mean-pool") == names  # the mtrec- prefix is optional


@pytest.mark.parametrize("bad", ["Mean", "mean_pool", "mean.pool", "mean-", "mean--pool", "9lives", "mtrec", "mtrec-", "a b"])
def test_a_bad_name_exits_2_and_writes_nothing(tmp_path, bad):
    result = invoke("plugins", "new", bad, "--path", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "use lowercase letters and digits" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_or_a_registered_name_exits_2(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = invoke("plugins", "new", "taken", "--path", str(tmp_path))
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    result = invoke("plugins", "new", "sasrec", "--path", str(tmp_path))  # the built-in recipe's name
    assert result.exit_code == 2 and "'sasrec' is already registered" in result.output
    assert not (tmp_path / "sasrec").exists()


def test_scaffold_files_are_complete_and_valid(tmp_path):
    result = invoke("plugins", "new", "mean-pool", "--path", str(tmp_path / "parent"))
    assert result.exit_code == 0, result.output
    root = tmp_path / "parent" / "mean-pool"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "src/mtrec_mean_pool/__init__.py",
                     "src/mtrec_mean_pool/encoder.py", "src/mtrec_mean_pool/plugin.py",
                     "tests/test_mtrec_mean_pool.py"]
    assert not [p for p in (tmp_path / "parent").iterdir() if p.name.startswith(".")]  # no staging left
    for path in root.rglob("*"):
        if path.is_file():
            assert "${" not in path.read_text(), f"{path}: unfilled placeholder"
            if path.suffix == ".py":
                ast.parse(path.read_text(), filename=str(path))
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "mtrec-mean-pool"
    assert project["project"]["entry-points"]["mtrec.plugins"] == {"mean-pool": "mtrec_mean_pool.plugin"}


@pytest.mark.slow
def test_the_scaffolds_own_tests_pass(tmp_path):
    assert invoke("plugins", "new", "mean-pool", "--path", str(tmp_path)).exit_code == 0
    root = tmp_path / "mean-pool"
    env = child_env() | {"PYTHONPATH": str(root / "src")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                            capture_output=True, text=True, timeout=240, env=env, cwd=root)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed" in result.stdout


@pytest.mark.slow
def test_a_scaffolded_plugin_installs_and_appears_in_plugins_list(tmp_path):
    assert invoke("plugins", "new", "mean-pool", "--path", str(tmp_path)).exit_code == 0
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, tmp_path / "mean-pool")
    assert in_venv(python, "mtrec_mean_pool")
    result = mtrec(python, "plugins", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    (info,) = [p for p in json.loads(result.stdout) if p["name"] == "mean-pool"]
    assert (info["distribution"], info["module"], info["error"]) == ("mtrec-mean-pool", "mtrec_mean_pool.plugin", None)
    result = mtrec(python, "components", "list", "--format", "json")
    ours = {(c["kind"], c["name"]) for c in json.loads(result.stdout) if c["plugin"] == "mean-pool"}
    assert ours == {("encoder", "mean-pool"), ("recipe", "mean-pool")}
