"""Faults and bad input, seen from the command line: one clear message and exit code 2.

* every case of the malformed-dataset corpus (tests/fixtures/malformed, listed in
  tests/test_formats.py) through ``mtrec run``: the message names the file (and the line), no
  traceback, no half-written cache entry;
* an unwritable cache folder, run folder or registry path;
* a plugin that raises inside a hook is named;
* large interaction files are streamed into compact arrays, not a Python tuple per line.
"""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtrec import hookimpl
from mtrec.cli import main
from mtrec.plugins import Plugins
from mtrec.registry import open_registry
from ops_helpers import run_args, write_tiny_dataset
from malformed_cases import MALFORMED, MALFORMED_CASES, MALFORMED_DATASET_CASES

CORPUS = [(c[0], c[1], c[2], c[3], c[4]) for c in MALFORMED_CASES] + [
    (folder, fmt, None, None, fragment) for folder, fmt, fragment in MALFORMED_DATASET_CASES
]


def _spec_for(tmp_path: Path, folder: str, fmt: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: {folder}\nsources:\n  - format: {fmt}\n    path: {MALFORMED / folder}\n", encoding="utf-8")
    return spec


@pytest.mark.parametrize(("folder", "fmt", "file", "line", "fragment"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_corpus_through_the_cli(folder, fmt, file, line, fragment, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MTREC_CACHE_DIR", str(cache))
    result = CliRunner().invoke(main, ["run", "--plugin", "sasrec", "--no-registry", "--dataset",
                                       str(_spec_for(tmp_path, folder, fmt))])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert fragment in result.output
    if file is not None:
        assert file in result.output
    if line is not None:
        assert f"line {line}:" in result.output
    assert not (cache / "datasets").exists() or not list((cache / "datasets").iterdir())  # nothing half-written


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _blocked(tmp_path: Path) -> Path:
    """A path that cannot be created even by root: its parent is a regular file."""
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "sub"


def test_unwritable_cache_folder(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_CACHE_DIR", str(_blocked(tmp_path)))
    result = CliRunner().invoke(main, run_args(spec, "--no-registry"))
    assert result.exit_code == 2, result.output
    assert "cannot write the dataset cache" in result.output and "MTREC_CACHE_DIR" in result.output
    assert str(tmp_path / "a-file") in result.output


def test_unwritable_run_folder(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_HOME", str(_blocked(tmp_path)))
    result = CliRunner().invoke(main, run_args(spec, "--no-registry"))
    assert result.exit_code == 2, result.output
    assert "cannot write the run folder" in result.output and "MTREC_HOME" in result.output


def test_unwritable_registry(spec, tmp_path):
    url = f"sqlite:///{_blocked(tmp_path) / 'registry.db'}"
    result = CliRunner().invoke(main, run_args(spec, "--registry", url))
    assert result.exit_code == 2, result.output
    assert "cannot create the folder" in result.output and "registry" in result.output


class Boom:
    """A plugin whose hook ``where`` raises."""

    def __init__(self, where: str) -> None:
        self.where = where

    def _maybe(self, hook: str) -> None:
        if hook == self.where:
            raise RuntimeError("the integration is down")

    @hookimpl
    def mtrec_on_run_start(self, run):
        self._maybe("mtrec_on_run_start")

    @hookimpl
    def mtrec_on_stage_end(self, run, stage, metrics):
        self._maybe("mtrec_on_stage_end")

    @hookimpl
    def mtrec_on_run_end(self, run, status, metrics):
        self._maybe("mtrec_on_run_end")

    @hookimpl
    def mtrec_register_components(self, register):
        self._maybe("mtrec_register_components")


@pytest.mark.parametrize("hook", ["mtrec_register_components", "mtrec_on_run_start", "mtrec_on_stage_end",
                                  "mtrec_on_run_end"])
def test_a_plugin_raising_inside_a_hook_is_named(hook, spec, tmp_path, monkeypatch):
    plugins = Plugins().load()
    plugins.register_module(Boom(hook), name="boom-plugin", distribution="mtrec-boom")
    monkeypatch.setattr("mtrec.cli._plugins", lambda: plugins)
    registry = tmp_path / "registry.db"
    result = CliRunner().invoke(main, run_args(spec, "--name", hook, "--registry", f"sqlite:///{registry}",
                                               settings=["training.threads=1", "training.epochs=1",
                                                         "encoder.params.hidden=16"]))
    assert result.exit_code == 2, result.output
    assert re.search(rf"plugin 'boom-plugin'.* raised inside {hook}: RuntimeError: the integration is down", result.output)
    assert "Traceback" not in result.output
    if hook != "mtrec_register_components":
        with open_registry(f"sqlite:///{registry}") as reg:
            (run,) = reg.list_runs()
        if hook == "mtrec_on_run_end":  # hooks hear of the end after it is recorded: the results stand
            assert run["status"] == "finished"
        else:  # the run stops and the registry says why
            assert run["status"] == "failed" and "boom-plugin" in run["error"]


def test_large_interaction_files_are_streamed_into_compact_arrays(tmp_path):
    """Reading a 100k-line CSV allocates far less than a Python tuple, float and strings per line."""
    from mtrec.data.formats.csvfmt import read_csv

    n, users, items = 100_000, 2_000, 500
    lines = ["user,item,timestamp"] + [f"u{i % users},i{(i * 7) % items},{n - i}" for i in range(n)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "small.csv").write_text("user,item,timestamp\nu,i,1\n", encoding="utf-8")
    read_csv(tmp_path / "small.csv", domain="D", options={"items": False})  # lazy imports are not the reader's cost
    tracemalloc.start()
    source = read_csv(path, domain="D", options={"items": False})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sum(len(s) for s in source.sequences.values()) == n
    assert peak / n < 60, f"{peak / n:.0f} bytes per interaction"  # a tuple per line alone is ~250
    seq = source.sequences["u0"]
    assert seq[0] is seq[0] and len({id(x) for s in source.sequences.values() for x in s}) <= items  # shared tuples
    # time order within a user (the file lists u0's rows newest first)
    assert [x[1] for x in seq[:2]] == [f"i{((n // users - 1) * users * 7) % items}", f"i{((n // users - 2) * users * 7) % items}"]


def test_streamed_order_is_stable_for_equal_times(tmp_path):
    from mtrec.data.formats._io import InteractionBuffer

    buf = InteractionBuffer()
    for item, t in [("a", 2.0), ("b", 1.0), ("c", 2.0), ("d", 1.0)]:
        buf.add("u", "D", item, t)
    buf.add("v", "D", "a", 0.0)
    assert buf.sequences() == {"u": [("D", "b"), ("D", "d"), ("D", "a"), ("D", "c")], "v": [("D", "a")]}


PEAK_PROBE = """
import json
import numpy as np
from mtrec.training.memory import PeakMemory
with PeakMemory() as big:
    block = np.ones(8_000_000)  # 61 MiB, touched
    del block
with PeakMemory() as small:
    pass
print(json.dumps({"big": big.rss_mb, "small": small.rss_mb, "reset": big.rss_reset, "gpu": big.gpu_mb}))
"""


def test_peak_memory_is_measured_per_stretch_of_work():
    # In a fresh process: in the test session's own process, earlier tests leave freed memory that
    # the block can reuse without raising the resident set, which made this flaky.
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True, timeout=120, check=True)
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    if not peaks["reset"]:
        pytest.skip("this system cannot reset the peak RSS (/proc/self/clear_refs)")
    assert peaks["big"] - peaks["small"] > 40  # the second stretch does not inherit the first one's peak
    assert peaks["gpu"] is None
