"""Issue 18: no code from data files, no runs left "running", config errors at config time,
no answers from a model trained on other data, plugins isolated from each other.

Every bad input ends with exit code 2 and one message naming the file or key, no traceback, and
nothing half-written (no registry row, no run folder).
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mtrec import engine, hookimpl
from mtrec.cli import main
from mtrec.config import resolve
from mtrec.errors import ConfigError, UserError
from mtrec.paths import data_dir
from mtrec.plugins import Plugins
from mtrec.registry import open_registry
from mtrec.training.checkpoint import (
    UnsafeFileError,
    atomic_torch_save,
    load_checkpoint,
    member,
    rng_state,
    set_rng_state,
)
from ops_helpers import PYTHON, REPO, TINY_SETTINGS, env_for, run_args, write_tiny_dataset

ONE_EPOCH = [s for s in TINY_SETTINGS if not s.startswith("training.epochs")] + ["training.epochs=1"]


class Evil:
    """A pickle that creates ``marker`` when it is unpickled (``torch.load(weights_only=False)``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted(path: Path, marker: Path, payload: object = None) -> Path:
    """Write a crafted ``.pt`` at ``path`` and check it is armed: loading a copy the unsafe way
    does run its code (so a test that finds no marker proves the loader refused it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"name": "identifier", "rng": [], "payload": payload, "x": Evil(marker)}, path)
    armed = marker.with_name(marker.name + ".armed")
    torch.save({"x": Evil(armed)}, path.with_suffix(".probe"))
    torch.load(path.with_suffix(".probe"), weights_only=False)
    assert armed.exists()
    armed.unlink()
    path.with_suffix(".probe").unlink()
    return path


def runs() -> set[str]:
    folder = data_dir() / "runs"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-safety"))


@pytest.fixture(scope="module")
def finished(spec, tmp_path_factory) -> dict:
    """A finished one-epoch sasrec run recorded in its own registry."""
    root = tmp_path_factory.mktemp("finished")
    url = f"sqlite:///{root / 'registry.db'}"
    out = root / "metrics.json"
    result = CliRunner().invoke(main, run_args(spec, "--registry", url, "--metrics-json", str(out), settings=ONE_EPOCH))
    assert result.exit_code == 0, result.output
    run_id = json.loads(out.read_text())["run_id"]
    return {"id": run_id, "url": url, "dir": data_dir() / "runs" / run_id}


def interrupted_copy(finished: dict, name: str) -> Path:
    """A copy of the finished run's folder that looks interrupted (no metrics.json)."""
    folder = data_dir() / "runs" / name
    shutil.copytree(finished["dir"], folder, ignore=shutil.ignore_patterns("run.lock"))
    (folder / "metrics.json").unlink()
    return folder


def resume(run_id: str):
    return CliRunner().invoke(main, ["run", "--resume", run_id, "--no-registry", "--no-progress"])


# --------------------------------------------------------------------------- 1. no code from data files


def test_a_crafted_identifier_checkpoint_is_refused_on_resume(finished, tmp_path):
    folder = interrupted_copy(finished, "20000101-000000-crafted1")
    marker = tmp_path / "pwned"
    crafted(folder / "checkpoints" / "resume" / "000-identifier.done.pt", marker)
    result = resume(folder.name)
    assert result.exit_code == 2, result.output
    assert "refusing to load" in result.output and "000-identifier.done.pt" in result.output
    assert "builtins.open" in result.output or "io.open" in result.output  # names what it would have called
    assert "Traceback" not in result.output
    assert not marker.exists()


def test_a_crafted_stage_checkpoint_is_refused_on_resume(finished, tmp_path):
    folder = interrupted_copy(finished, "20000101-000000-crafted2")
    stage = sorted((folder / "checkpoints" / "resume").glob("001-*.done.pt"))[0]
    marker = tmp_path / "pwned"
    crafted(stage, marker)
    result = resume(folder.name)
    assert result.exit_code == 2, result.output
    assert "refusing to load" in result.output and stage.name in result.output
    assert not marker.exists()


def test_a_crafted_model_file_is_refused(tmp_path):
    from mtrec.builtins.transfer import ModelSetStrategy

    marker = tmp_path / "pwned"
    crafted(tmp_path / "models" / "model-0.pt", marker)
    (tmp_path / "models" / "models.json").write_text(json.dumps({"0": "model-0.pt"}))
    fake_run = SimpleNamespace(build_encoder=lambda: nn.Linear(2, 2), device=torch.device("cpu"))
    with pytest.raises(UnsafeFileError, match="refusing to load .*model-0.pt"):
        ModelSetStrategy().load(fake_run, tmp_path / "models")
    assert not marker.exists()
    # the same folder with a real state dict loads
    atomic_torch_save(nn.Linear(2, 2).state_dict(), tmp_path / "models" / "model-0.pt")
    models = ModelSetStrategy().load(fake_run, tmp_path / "models")
    assert isinstance(models[0], nn.Linear)


def test_every_file_a_run_writes_loads_with_weights_only(finished):
    files = sorted(finished["dir"].rglob("*.pt"))
    assert any("resume" in str(p) for p in files) and any(p.parent.name == "models" for p in files)
    for path in files:
        torch.load(path, map_location="cpu", weights_only=True)  # raises on any pickled object


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    random.seed(3), np.random.seed(4), torch.manual_seed(5)
    np.random.normal()  # a cached Gaussian is part of NumPy's state
    atomic_torch_save({"rng": [rng_state()]}, tmp_path / "c.pt")
    first = (random.random(), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"][0])
    again = (random.random(), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    assert again == first


def test_torch_floor_is_a_safe_loader_and_admits_the_installed_torch():
    from packaging.requirements import Requirement
    from packaging.version import Version

    files = [REPO / "pyproject.toml", *sorted((REPO / "plugins").glob("*/pyproject.toml"))]
    for path in files:
        text = path.read_text()
        pins = [line.strip().strip('",') for line in text.splitlines() if line.strip().startswith('"torch')]
        for pin in pins:
            req = Requirement(pin)
            assert not req.specifier.contains("2.5.1"), f"{path}: {pin} admits a torch whose loader is unsafe by default"
            assert req.specifier.contains("2.6.0") and req.specifier.contains("2.13.0"), f"{path}: {pin}"
    assert Version(torch.__version__.split("+")[0]) >= Version("2.6")


# --------------------------------------------------------------------------- 2. file names that leave the folder


def test_member_refuses_names_that_leave_the_folder(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (tmp_path / "secret.pt").write_bytes(b"x")
    (folder / "link.pt").symlink_to(tmp_path / "secret.pt")
    (folder / "ok.pt").write_bytes(b"x")
    assert member(folder, "ok.pt") == folder / "ok.pt"
    for name in ["../secret.pt", "/etc/passwd", str(tmp_path / "secret.pt"), "a/../../secret.pt", "link.pt", "", 3]:
        with pytest.raises(UnsafeFileError):
            member(folder, name, folder / "models.json")


@pytest.mark.parametrize("name", ["../outside.pt", "/tmp/outside.pt", "escape.pt"])
def test_models_json_names_outside_the_folder_are_refused(tmp_path, name):
    from mtrec.builtins.transfer import ModelSetStrategy

    folder = tmp_path / "models"
    folder.mkdir()
    atomic_torch_save(nn.Linear(2, 2).state_dict(), tmp_path / "outside.pt")
    (folder / "escape.pt").symlink_to(tmp_path / "outside.pt")
    (folder / "models.json").write_text(json.dumps({"0": name}))
    fake_run = SimpleNamespace(build_encoder=lambda: pytest.fail("nothing may be built"), device=torch.device("cpu"))
    with pytest.raises(UnsafeFileError, match=r"models\.json: file name .* (leaves|outside) the folder"):
        ModelSetStrategy().load(fake_run, folder)


def test_lora_adapter_names_outside_the_folder_are_refused(tmp_path):
    from mtrec.builtins.lora import UnifiedThenLoRA, UnifiedThenLoRAParams

    folder = tmp_path / "models"
    folder.mkdir()
    meta = {"mode": "lora", "lora": {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q"]},
            "adapters": {"0": "../../evil"}}
    (folder / "transfer.json").write_text(json.dumps(meta))
    strategy = UnifiedThenLoRA(UnifiedThenLoRAParams())
    fake_run = SimpleNamespace(build_encoder=lambda: pytest.fail("nothing may be built"), device=torch.device("cpu"))
    with pytest.raises(UnsafeFileError, match="adapter name '../../evil'"):
        strategy.load(fake_run, folder)


def test_id_matcher_model_names_outside_the_folder_are_refused(tmp_path):
    strategy_module = pytest.importorskip("mtrec_id_matcher.strategy")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "transfer.json").write_text(json.dumps(
        {"id_text": False, "pretrain_encoder_domains": [], "files": {"0": "../../../etc/passwd"}}))
    strategy = object.__new__(strategy_module.PretrainMatchFinetune)
    fake_run = SimpleNamespace(build_encoder=lambda: pytest.fail("nothing may be built"), device=torch.device("cpu"))
    with pytest.raises(UnsafeFileError, match="leaves the folder"):
        strategy.load(fake_run, folder)


# --------------------------------------------------------------------------- 3. no run left running


def test_unknown_target_domain_leaves_no_registry_row_and_no_folder(spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    before = runs()
    result = CliRunner().invoke(main, run_args(spec, "--registry", url, "--set", "domains.targets=[Nope]"))
    assert result.exit_code == 2, result.output
    assert "domains.targets: unknown domain(s) 'Nope'" in result.output and "Traceback" not in result.output
    with open_registry(url) as reg:
        assert reg.list_runs() == []
    assert runs() == before


def test_unwritable_run_folder_leaves_no_registry_row(spec, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("MTREC_HOME", str(tmp_path / "a-file" / "home"))
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    result = CliRunner().invoke(main, run_args(spec, "--registry", url))
    assert result.exit_code == 2, result.output
    assert "cannot write the run folder" in result.output and "MTREC_HOME" in result.output
    with open_registry(url) as reg:
        assert reg.list_runs() == []


def test_a_failure_once_the_row_exists_is_recorded_failed(spec, tmp_path, monkeypatch):
    """Setting up the run folder happens after the row exists: its failure must not leave 'running'."""
    ended: list[str] = []

    class Spy:
        @hookimpl
        def mtrec_on_run_end(self, run, status, metrics):
            ended.append(status)

    plugins = Plugins().load()
    plugins.register_module(Spy(), name="spy")
    monkeypatch.setattr("mtrec.cli._plugins", lambda: plugins)

    def broken_lock(run_dir, run_id):
        raise UserError(f"cannot lock {run_dir}: the disk went read-only")

    monkeypatch.setattr(engine, "run_lock", broken_lock)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    result = CliRunner().invoke(main, run_args(spec, "--registry", url))
    assert result.exit_code == 2, result.output
    with open_registry(url) as reg:
        (run,) = reg.list_runs()
        assert run["status"] == "failed" and "read-only" in reg.get_run(run["id"])["error"]
    assert ended == ["failed"]


SIGTERM_RUNNER = textwrap.dedent("""
    import os, signal, sys, time
    from mtrec import hookimpl
    from mtrec.plugins import get_plugins

    class Spy:
        @hookimpl
        def mtrec_on_stage_end(self, run, stage, metrics):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler interrupts this; without one the process is dead already

        @hookimpl
        def mtrec_on_run_end(self, run, status, metrics):
            with open(sys.argv[1], "w") as fh:
                fh.write(status)

    get_plugins().register_module(Spy(), name="spy")
    from mtrec.cli import main
    main(sys.argv[2:])
""")


def test_sigterm_without_registry_tells_hooks_the_run_was_interrupted(spec, tmp_path):
    runner = tmp_path / "runner.py"
    runner.write_text(SIGTERM_RUNNER)
    status = tmp_path / "status.txt"
    args = run_args(spec, "--no-registry", settings=ONE_EPOCH)
    env = env_for(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([PYTHON, str(runner), str(status), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, proc.stderr[-2000:])
    assert status.read_text() == "interrupted"
    assert "interrupted by SIGTERM" in proc.stderr and "mtrec run --resume" in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- 4. config errors at config time


@pytest.mark.parametrize(("setting", "key"), [
    ("training.select_metric=foo@10", "training.select_metric: 'foo@10'"),
    ("training.select_metric=ndcg@20", "training.select_metric: 'ndcg@20'"),  # 20 is not in evaluation.ks
    ("identifier.name=semantic-id", "identifier.name: identifier 'semantic-id' would be fitted and then ignored"),
])
def test_bad_combinations_are_config_errors(spec, setting, key):
    if "semantic-id" in setting:
        pytest.importorskip("mtrec_semantic_id")
    before = runs()
    result = CliRunner().invoke(main, run_args(spec, "--no-registry", "--set", setting))
    assert result.exit_code == 2, result.output
    assert key in result.output and "Traceback" not in result.output
    assert runs() == before  # refused before any run folder exists


def test_select_metric_names_what_validation_reports():
    plugins = Plugins().load()
    resolve(plugins.catalogue, "sasrec", overrides=["training.select_metric=recall@5"])
    resolve(plugins.catalogue, "sasrec", overrides=["evaluation.ks=[20]", "training.select_metric=ndcg@20"])
    resolve(plugins.catalogue, "sasrec", overrides=["evaluation.protocol=sampled", "training.select_metric=auc"])
    with pytest.raises(ConfigError, match="choose one of ndcg@5, ndcg@10, recall@5, recall@10, mrr"):
        resolve(plugins.catalogue, "sasrec", overrides=["training.select_metric=auc"])  # full ranking has none


def test_an_identifier_a_part_consumes_is_accepted():
    pytest.importorskip("mtrec_semantic_id")
    plugins = Plugins().load()
    resolved = resolve(plugins.catalogue, "gmc", quick=True)
    assert resolved.config.identifier.name == "semantic-id"


def test_resume_without_the_identifier_folder_is_one_clear_error(finished):
    folder = interrupted_copy(finished, "20000101-000000-noident")
    shutil.rmtree(folder / "identifier")
    result = resume(folder.name)
    assert result.exit_code == 2, result.output
    assert str(folder / "identifier") in result.output and "is missing" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- 5. recommend after the data changed


def test_recommend_refuses_a_run_whose_dataset_changed(spec, finished):
    args = ["recommend", "--run", finished["id"], "--domain", "A", "--history", "A1,A2", "-k", "3",
            "--registry", finished["url"], "--format", "json"]
    ok = CliRunner().invoke(main, args)
    assert ok.exit_code == 0, ok.output
    csv = spec.parent / "interactions.csv"
    original = csv.read_text()
    header, *rows = original.splitlines()
    try:
        csv.write_text("\n".join([header, *reversed(rows)]) + "\n")  # the same rows, another order
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 2, refused.output
        assert "fingerprint" in refused.output and finished["id"] in refused.output
        assert "Traceback" not in refused.output
        csv.write_text(original.rstrip("\n") + "\nu0,A999,1800000000,A\n")  # one item more
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 2 and "fingerprint" in refused.output
        # one interaction more with known items only: every item index still names the same item
        csv.write_text(original.rstrip("\n") + "\nu0,A1,1800000000,A\n")
        same_items = CliRunner().invoke(main, args)
        assert same_items.exit_code == 0, same_items.output
        assert json.loads(same_items.stdout) == json.loads(ok.stdout)
    finally:
        csv.write_text(original)


# --------------------------------------------------------------------------- 6. plugin isolation


GOOD = """
from mtrec import hookimpl
from mtrec.components import Component
from mtrec.builtins.transfer import Joint, JointParams

@hookimpl
def mtrec_register_components(register):
    register(Component(kind="transfer", name="{name}-joint", factory=Joint, params=JointParams))
"""

RAISES = """
from mtrec import hookimpl
from mtrec.components import Component
from mtrec.builtins.transfer import Joint, JointParams

@hookimpl
def mtrec_register_components(register):
    register(Component(kind="transfer", name="half-registered", factory=Joint, params=JointParams))
    raise RuntimeError("the licence server is down")

@hookimpl
def mtrec_on_run_start(run):
    raise AssertionError("a skipped plugin's hooks must not run")
"""

EXITS = "import sys\nsys.exit(3)\n"


@pytest.fixture()
def fake_entry_points(tmp_path, monkeypatch):
    """Three installed plugins: one exits at import, one raises while registering, one works."""
    tag = tmp_path.name.replace("-", "_").replace(".", "_")
    sources = {f"exits_{tag}": EXITS, f"raises_{tag}": RAISES, f"good_{tag}": GOOD.format(name=f"good{tag}")}
    for module, text in sources.items():
        (tmp_path / f"{module}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint(name=m.split("_")[0], value=m, group="mtrec.plugins") for m in sources]
    real = metadata.entry_points

    def entry_points(**kwargs):
        return eps if kwargs.get("group") == "mtrec.plugins" else real(**kwargs)

    monkeypatch.setattr("mtrec.plugins.metadata.entry_points", entry_points)
    monkeypatch.setenv("MTREC_LOAD_PLUGINS", "exits,raises,good")
    return tag


def test_a_plugin_that_exits_or_raises_is_skipped_and_the_others_work(fake_entry_points, spec, capsys, monkeypatch):
    plugins = Plugins().load()  # sys.exit at import must not end the process
    assert "SystemExit(3)" in plugins.infos["exits"].error
    catalogue = plugins.catalogue  # the raising registration must not break the catalogue
    assert f"good{fake_entry_points}-joint" in catalogue.components["transfer"]
    assert "half-registered" not in catalogue.components["transfer"]  # nothing of a failed plugin is kept
    assert "sasrec" in catalogue.recipes
    assert "raised inside mtrec_register_components: RuntimeError: the licence server is down" in plugins.infos["raises"].error
    assert not plugins.pm.has_plugin("raises")  # nor its lifecycle hooks
    warned = capsys.readouterr().err
    assert "warning: plugin 'exits'" in warned and "warning: plugin 'raises'" in warned

    monkeypatch.setattr("mtrec.cli._plugins", lambda: plugins)
    listed = CliRunner().invoke(main, ["plugins", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()}
    assert "FAILED: SystemExit(3) at import" in lines["exits"]
    assert "FAILED: raised inside mtrec_register_components" in lines["raises"]
    assert lines["good"].rstrip().endswith("ok") and lines["mtrec"].rstrip().endswith("ok")

    # a whole run works beside them (the raising plugin's on_run_start is not called)
    result = CliRunner().invoke(main, run_args(spec, "--no-registry", "--set",
                                               f"transfer.name=good{fake_entry_points}-joint", settings=ONE_EPOCH))
    assert result.exit_code == 0, result.output


def test_a_registration_failure_shows_in_plugins_list_before_anything_else_ran(fake_entry_points, monkeypatch):
    plugins = Plugins().load()
    monkeypatch.setattr("mtrec.cli._plugins", lambda: plugins)
    listed = CliRunner().invoke(main, ["plugins", "list", "--format", "json"])
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert "RuntimeError: the licence server is down" in rows["raises"]["error"]
    assert rows["good"]["error"] is None


def test_a_plugin_exiting_at_import_does_not_end_real_commands(tmp_path):
    """The real entry-point path, in a fresh process: every command used to end silently."""
    dist = tmp_path / "mtrec_exiting-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mtrec-exiting\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mtrec.plugins]\nexiting = mtrec_exiting_mod\n")
    (tmp_path / "mtrec_exiting_mod.py").write_text(EXITS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("MTREC_LOAD_PLUGINS", None)
    listed = subprocess.run([PYTHON, "-m", "mtrec", "plugins", "list"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "mtrec-exiting" in listed.stdout and "FAILED: SystemExit(3) at import" in listed.stdout
    assert "warning: plugin 'exiting' (mtrec-exiting) is skipped" in listed.stderr
    components = subprocess.run([PYTHON, "-m", "mtrec", "components", "list", "--kind", "recipe"],
                                capture_output=True, text=True, env=env, timeout=120)
    assert components.returncode == 0 and "sasrec" in components.stdout
