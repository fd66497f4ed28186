"""``bash benchmarks/gpu_check.sh --dry-run``: the GPU check's whole code path on the CPU at tiny sizes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from ops_helpers import REPO

pytestmark = [
    pytest.mark.slow,  # ~100 s on a shared 2-core CPU
    pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout"),
]


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the report:\n{text}"
    return float(match.group(1))


def test_gpu_check_dry_run_writes_a_report_with_numbers(tmp_path):
    report = tmp_path / "benchmarks.md"
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="")
    env.pop("OUT", None)
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(report),
                           "--work", str(tmp_path / "work"),
                           # the default 100 s leaves the full runs no time when the CPU is shared
                           "--budget", "200"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert "<!-- gpu-check:start -->" in text and "## GPU check (" in text and "dry run" in text
    assert "amazon-mini" in text
    assert re.search(r"\| CUDA tests \(`tests/test_cuda.py`\) \| \d+ (skipped|passed)", text)
    assert _number(r"\| unified-stage epoch \(gmc-paper\) \| ([0-9.]+) s/epoch", text) > 0
    assert _number(r"\| beam-20 throughput [^|]*\| ([0-9.]+) users/s", text) > 0
    for recipe in ("sasrec", "gmc-paper", "tiger-paper"):
        assert re.search(rf"^\| {recipe} \| (finished|timed out|not started)", text, re.M), recipe
    # the cheapest recipe runs first and always finishes: its test metrics are in its row
    row = re.search(r"^\| sasrec \| finished \| (\d+) \|[^|]*\| ([0-9.]+) \| ([0-9.]+) \|", text, re.M)
    assert row, text
    assert 0 <= float(row.group(2)) <= 1 and 0 <= float(row.group(3)) <= 1
    # a dry run never touches docs/benchmarks.md unless told to
    assert str(report) in proc.stdout
