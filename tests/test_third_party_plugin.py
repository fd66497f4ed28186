"""The example third-party plugin (examples/third-party-plugin) installed as an outsider would.

It is not installed by the Makefile: each test module builds a fresh virtual environment, installs
the example there (mtrec itself comes from this environment), and uses mtrec's CLI in it.
"""

from __future__ import annotations

import json

import pytest

from plugin_venv import REPO, child_env, fresh_venv, in_venv, mtrec, pip_install

EXAMPLE = REPO / "examples" / "third-party-plugin"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    python = fresh_venv(tmp_path_factory.mktemp("example-venv") / "venv")
    pip_install(python, EXAMPLE)
    return python


def test_example_is_installed_in_the_venv_while_mtrec_comes_from_this_environment(venv_python):
    assert in_venv(venv_python, "classic_baselines")
    assert not in_venv(venv_python, "mtrec") and not in_venv(venv_python, "torch")


def _listing(python):
    result = mtrec(python, "plugins", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_plugins_and_components_lists_show_the_examples_parts(venv_python):
    (info,) = [p for p in _listing(venv_python) if p["name"] == "classic-baselines"]
    assert (info["distribution"], info["version"], info["error"]) == ("mtrec-classic-baselines", "0.1.0", None)
    result = mtrec(venv_python, "components", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    ours = {(c["kind"], c["name"]) for c in json.loads(result.stdout) if c["plugin"] == "classic-baselines"}
    assert ours == {("encoder", "classic-gru4rec"), ("encoder", "popularity"), ("transfer", "no-training"),
                    ("recipe", "gru4rec"), ("recipe", "pop")}


def test_pop_quick_run_in_the_venv_is_recorded_with_the_plugins_provenance(venv_python, tmp_path):
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    out = tmp_path / "metrics.json"
    result = mtrec(venv_python, "run", "--plugin", "pop", "--quick", "--registry", registry, "--no-progress",
                   "--set", "training.threads=1", "--metrics-json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert metrics["stages"] == []  # popularity trains nothing
    assert set(metrics["test"]) == {"Scientific", "Arts", "Office", "average"}
    shown = mtrec(venv_python, "runs", "show", metrics["run_id"], "--format", "json", "--registry", registry)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    encoder = [c for c in record["components"] if c["kind"] == "encoder"]
    assert [(c["name"], c["distribution"], c["version"]) for c in encoder] == [
        ("popularity", "mtrec-classic-baselines", "0.1.0")]


def test_a_refused_combination_exits_2_naming_the_part(venv_python):
    result = mtrec(venv_python, "run", "--plugin", "pop", "--quick", "--no-registry",
                   "--set", "transfer.name=single-domain")
    assert result.returncode == 2
    assert "encoder 'popularity' needs a transfer that provides no-training" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_examples_own_tests_pass_in_the_venv(venv_python):
    import subprocess

    result = subprocess.run(
        [str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, timeout=240, env=child_env(), cwd=EXAMPLE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
