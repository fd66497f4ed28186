"""Files through the registry: only a run's own folder is ever read or deleted.

A shared registry's rows are written by every user of it, so an artifact row is a claim,
not a fact: rows crafted to point outside the run folder (directly, with ``..``, through a
symlink, or with a run id that is a path) must be refused with one clear message, and
nothing may be deleted.  ``--delete-files`` removes the whole run folder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from mtrec.registry import RegistryError, open_registry
from mtrec.registry.cli import runs


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder outside every run folder that must survive whatever the rows say."""
    folder = tmp_path / "precious"
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "sub" / "data.csv").write_text("1,2,3")
    return folder


def _intact(victim: Path) -> bool:
    return (victim / "thesis.tex").read_text() == "years of work" and (victim / "sub" / "data.csv").is_file()


def _craft_artifact(registry_url: str, run_id: str, kind: str, path: str) -> None:
    """Insert an artifact row as anyone with write access to the database could."""
    engine = create_engine(registry_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO artifacts (run_id, kind, path, sha256, bytes, created_at) "
                "VALUES (:r, :k, :p, :s, 0, CURRENT_TIMESTAMP)"
            ), {"r": run_id, "k": kind, "p": path, "s": "0" * 64})
    finally:
        engine.dispose()


def _sql(registry_url: str, statement: str, **params: str) -> None:
    engine = create_engine(registry_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def _finished_run(reg, start_kwargs, run_dir) -> tuple[str, Path]:
    """A run as the engine leaves it: config, checkpoints, metrics and two artifacts."""
    rid = reg.start_run(**start_kwargs())
    folder = run_dir(rid)
    for name, content in (("config.json", "{}"), ("run.json", "{}"), ("metrics.json", "{}"), ("run.lock", "")):
        (folder / name).write_text(content)
    (folder / "checkpoints" / "resume").mkdir(parents=True)
    (folder / "checkpoints" / "resume" / "001-joint.last.pt").write_bytes(b"state")
    (folder / "identifier").mkdir()
    (folder / "identifier" / "codes.json").write_text("[1, 2]")
    (folder / "models").mkdir()
    (folder / "models" / "base.pt").write_bytes(b"weights")
    reg.log_artifact(rid, "identifier", folder / "identifier")
    reg.log_artifact(rid, "models", folder / "models")
    reg.set_status(rid, "finished")
    return rid, folder


def _cli(registry_url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(runs, [*args, "--registry", registry_url], input=input)


def test_delete_files_removes_the_whole_run_folder(reg, registry_url, start_kwargs, run_dir):
    rid, folder = _finished_run(reg, start_kwargs, run_dir)
    other, other_folder = _finished_run(reg, start_kwargs, run_dir)
    assert reg.run_folder(rid[:7]) == folder.resolve()
    out = _cli(registry_url, "delete", rid, "--yes", "--delete-files")
    assert out.exit_code == 0, out.output
    assert f"and its folder {folder}" in out.stdout
    assert not folder.exists()  # checkpoints, config.json, metrics.json, run.lock: all gone
    assert folder.parent.is_dir() and (other_folder / "checkpoints").is_dir()  # nothing else
    assert reg.artifact_path(other, "models") == other_folder / "models"
    assert [r["id"] for r in reg.list_runs()] == [other]


def test_delete_files_of_a_run_without_artifacts_removes_its_folder(reg, start_kwargs, run_dir):
    rid = reg.start_run(**start_kwargs())
    folder = run_dir(rid)
    (folder / "config.json").write_text("{}")
    reg.set_status(rid, "failed", error="boom")
    assert reg.delete_run(rid, delete_files=True) == folder.resolve()
    assert not folder.exists()


@pytest.mark.parametrize("how", ["absolute", "dotdot", "relative"])
def test_crafted_row_outside_the_run_folder_is_refused_and_nothing_deleted(
    reg, registry_url, start_kwargs, run_dir, victim, how
):
    rid, folder = _finished_run(reg, start_kwargs, run_dir)
    path = {
        "absolute": str(victim),
        "dotdot": str(folder / ".." / ".." / ".." / victim.parent.name / victim.name),
        "relative": "precious",
    }[how]
    if how == "dotdot":
        assert Path(path).resolve() == victim.resolve()
    _craft_artifact(registry_url, rid, "evil", path)

    with pytest.raises(RegistryError, match=r"refusing to use the files of run .*artifact 'evil'.*outside the "
                                            r"run's own folder.*\(nothing was deleted\)"):
        reg.delete_run(rid, delete_files=True)
    with pytest.raises(RegistryError, match=r"refusing to read artifact 'evil'.*outside the run's own folder"):
        reg.artifact_path(rid, "evil", verify=False)
    out = _cli(registry_url, "delete", rid, "--yes", "--delete-files")
    assert out.exit_code == 2 and out.stdout == ""
    assert out.stderr.startswith("error: refusing to use the files of run") and "Traceback" not in out.output
    assert len(out.stderr.strip().splitlines()) == 1
    assert _intact(victim)
    assert (folder / "checkpoints" / "resume" / "001-joint.last.pt").is_file()  # not even the run folder
    assert reg.get_run(rid)["status"] == "finished"  # and the run is still recorded

    # without --delete-files only the records go
    assert reg.delete_run(rid) is None
    assert _intact(victim) and folder.is_dir()


def test_artifact_that_is_a_symlink_out_of_the_run_folder_is_refused(reg, registry_url, start_kwargs, run_dir, victim):
    rid, folder = _finished_run(reg, start_kwargs, run_dir)
    (folder / "leak").symlink_to(victim, target_is_directory=True)
    _craft_artifact(registry_url, rid, "leak", str(folder / "leak"))  # the path itself looks inside
    with pytest.raises(RegistryError, match=rf"'leak'.*{folder / 'leak'} \(which resolves to {victim}\), outside"):
        reg.artifact_path(rid, "leak", verify=False)
    with pytest.raises(RegistryError, match="outside the run's own folder.*nothing was deleted"):
        reg.delete_run(rid, delete_files=True)
    assert _intact(victim) and folder.is_dir()
    with pytest.raises(RegistryError, match="resolves to"):  # and it cannot be recorded either
        reg.log_artifact(rid, "leak2", folder / "leak")


def test_run_folder_that_is_a_symlink_is_refused(reg, registry_url, start_kwargs, run_dir, victim):
    rid = reg.start_run(**start_kwargs())
    link = run_dir(rid)
    link.rmdir()
    link.symlink_to(victim, target_is_directory=True)  # <runs>/<id> -> somebody's folder
    with pytest.raises(RegistryError, match="not a folder but a symbolic link"):
        reg.delete_run(rid, delete_files=True)  # no artifact rows: the folder itself is checked
    _craft_artifact(registry_url, rid, "identifier", str(link / "thesis.tex"))
    with pytest.raises(RegistryError, match="outside the run's own folder"):
        reg.delete_run(rid, delete_files=True)
    with pytest.raises(RegistryError, match="outside the run's own folder"):
        reg.artifact_path(rid, "identifier", verify=False)
    assert _intact(victim) and link.is_symlink()


def test_symlink_inside_a_folder_artifact(reg, start_kwargs, run_dir, victim):
    rid, folder = _finished_run(reg, start_kwargs, run_dir)
    (folder / "identifier" / "more").symlink_to(victim / "thesis.tex")  # planted after it was recorded
    with pytest.raises(RegistryError, match=rf"refusing to read.*{folder / 'identifier' / 'more'} is a symbolic link "
                                            rf"to {victim / 'thesis.tex'}"):
        reg.artifact_path(rid, "identifier", verify=False)
    with pytest.raises(RegistryError, match="is a symbolic link"):
        reg.log_artifact(rid, "identifier", folder / "identifier")
    # a link that stays inside the run folder is fine
    (folder / "identifier" / "more").unlink()
    (folder / "identifier" / "same").symlink_to(folder / "identifier" / "codes.json")
    reg.log_artifact(rid, "identifier", folder / "identifier")
    assert reg.artifact_path(rid, "identifier") == folder / "identifier"
    # deleting removes links, never what they point to
    (folder / "models" / "out").symlink_to(victim, target_is_directory=True)
    assert reg.delete_run(rid, delete_files=True) == folder.resolve()
    assert not os.path.lexists(folder) and _intact(victim)


def test_run_id_that_is_a_path_is_refused(reg, registry_url, start_kwargs, run_dir, victim):
    rid = reg.start_run(**start_kwargs(components=[]))
    run_dir("a")  # so that <runs>/a/../.. exists
    evil = "a/../../../" + victim.name
    _sql(registry_url, "UPDATE runs SET id = :new WHERE id = :old", new=evil, old=rid)
    with pytest.raises(RegistryError, match="is not a valid run id, so it names no run folder"):
        reg.delete_run(evil, delete_files=True)
    assert _intact(victim)
    assert reg.get_run(evil)["id"] == evil


def test_delete_files_refuses_a_run_in_progress(reg, start_kwargs, run_dir):
    rid, folder = _finished_run(reg, start_kwargs, run_dir)
    with open(folder / "run.lock", "w") as handle:  # what the engine holds while the run goes on
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RegistryError, match=r"it is in progress \(its process holds .*run.lock\).*nothing was"):
            reg.delete_run(rid, delete_files=True)
    assert folder.is_dir() and reg.get_run(rid)["id"] == rid
    assert reg.delete_run(rid, delete_files=True) == folder.resolve()  # once the lock is free


def test_log_artifact_outside_the_run_folder_is_refused(reg, start_kwargs, run_dir, tmp_path):
    rid = reg.start_run(**start_kwargs())
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"x")
    with pytest.raises(RegistryError, match=rf"refusing to record artifact 'models' of run {rid}: {stray} is not "
                                            rf"inside the run's own folder"):
        reg.log_artifact(rid, "models", stray)
    assert reg.get_run(rid)["artifacts"] == []


def test_run_folders_under_another_root(reg, registry_url, start_kwargs, tmp_path):
    """The engine may write runs under another root (``output_root``): the handle that recorded
    them reads them back; another process does only when told that root (``runs_root``)."""
    rid = reg.start_run(**start_kwargs())
    root = tmp_path / "elsewhere"
    (root / rid / "identifier").mkdir(parents=True)
    (root / rid / "identifier" / "codes.json").write_text("[]")
    reg.log_artifact(rid, "identifier", root / rid / "identifier")
    assert reg.artifact_path(rid, "identifier") == root / rid / "identifier"
    with open_registry(registry_url) as fresh:
        with pytest.raises(RegistryError, match="outside the run's own folder"):
            fresh.artifact_path(rid, "identifier")
    with open_registry(registry_url, runs_root=root) as told:
        assert told.artifact_path(rid, "identifier") == root / rid / "identifier"
        assert told.delete_run(rid, delete_files=True) == (root / rid).resolve()
    assert not (root / rid).exists() and root.is_dir()
