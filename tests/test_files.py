"""Atomic writes live in one module (mtrec.files), and every writer goes through it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mtrec import files

REPO = Path(__file__).resolve().parents[1]


def test_a_file_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    files.atomic_write_text(path, "one")  # the folder is created
    assert path.read_text(encoding="utf-8") == "one"
    with pytest.raises(RuntimeError, match="boom"):
        with files.atomic_open(path, "w") as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert path.read_text(encoding="utf-8") == "one"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]  # no staged file left behind


def test_numpy_writers_keep_their_names(tmp_path):
    with files.atomic_open(tmp_path / "x.npy", "wb", suffix=".npy") as fh:
        np.save(fh, np.arange(3), allow_pickle=False)
    with files.atomic_path(tmp_path / "y.npz", suffix=".npz") as tmp:
        np.savez(tmp, a=np.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npz"]
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2]


def test_a_folder_staged_beside_an_existing_one_loses_the_race_quietly(tmp_path):
    entry = tmp_path / "entry"
    with files.atomic_path(entry, directory=True) as tmp:
        (tmp / "a").write_text("first", encoding="utf-8")
    with files.atomic_path(entry, directory=True, existing_wins=True) as tmp:
        (tmp / "a").write_text("second", encoding="utf-8")
    assert (entry / "a").read_text(encoding="utf-8") == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]
    with pytest.raises(OSError):  # without existing_wins the failed rename is an error
        with files.atomic_path(entry, directory=True) as tmp:
            (tmp / "a").write_text("third", encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_atomic_open_refuses_modes_that_are_not_a_new_file(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with files.atomic_open(tmp_path / "a", "a"):
            pass


def test_torch_save_is_atomic_too(tmp_path):
    files.atomic_torch_save({"v": torch.ones(2)}, tmp_path / "m" / "x.pt")
    assert torch.equal(torch.load(tmp_path / "m" / "x.pt", weights_only=True)["v"], torch.ones(2))


def test_strict_json_text_turns_non_finite_floats_into_null():
    import json

    text = files.strict_json_text({"stages": [{"best_value": float("nan"), "seconds": 2.5}],
                                   "peak": float("inf"), "pair": (1.0, float("-inf")), "name": "café"})

    def refuse(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {
        "stages": [{"best_value": None, "seconds": 2.5}], "peak": None, "pair": [1.0, None], "name": "café"}


def test_checkpoint_still_exports_the_writers_plugins_import():
    from mtrec.training import checkpoint

    assert checkpoint.atomic_write_text is files.atomic_write_text
    assert checkpoint.atomic_torch_save is files.atomic_torch_save


def test_no_other_module_renames_files_into_place():
    """os.replace (the commit of an atomic write) appears in mtrec.files alone."""
    roots = [REPO / "core", REPO / "registry", REPO / "examples" / "third-party-plugin" / "src",
             *sorted((REPO / "plugins").glob("*/src"))]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if path == REPO / "core" / "files.py":
                continue
            if re.search(r"\bos\.replace\(", path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"write through mtrec.files instead of os.replace: {offenders}"
