"""Operations benchmark: DDP (torchrun, gloo, 2 processes) vs one process, resume after ``kill -9``,
peak memory per stage, and the memory of streaming a large interaction file.

    python benchmarks/operations.py [--epochs 3]

Writes the ``operations`` section of docs/benchmarks.md.  CPU only (no GPU in the session that
wrote it: the nccl row is left out and the doc says so).  Every run is a subprocess
``mtrec run ... --set training.threads=1`` with OMP_NUM_THREADS=1, one at a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import BENCHMARKS_MD, REPO, LoadSampler, log, machine_info, thread_env, write_section

PY = str(REPO / ".venv" / "bin" / "python")
RUNNER = REPO / "tests" / "ops_fault_runner.py"


def mtrec_run(args: list[str], env: dict, *, prefix: list[str] | None = None, runner: bool = False,
              extra_env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    command = (prefix or [PY]) + ([str(RUNNER)] if runner else ["-m", "mtrec"]) + args
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env={**env, **(extra_env or {})}, capture_output=True, text=True)
    return proc, time.perf_counter() - started


def stage_rows(metrics: dict) -> list[tuple[str, float, float, int]]:
    # metrics.json writes an unmeasured peak as null (strict JSON)
    return [(s["name"], s["seconds"], s.get("peak_rss_mb") if s.get("peak_rss_mb") is not None else float("nan"),
             s["epochs_run"]) for s in metrics["stages"]]


def stream_memory(lines: int, tmp: Path) -> dict:
    """Peak RSS and time of reading a ``lines``-row CSV with the streaming reader and the previous one."""
    path = tmp / "big.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("user,item,timestamp\n")
        for i in range(lines):
            fh.write(f"user{i % 50_000},item{(i * 7919) % 20_000},{1_600_000_000 + i}\n")
    old = tmp / "csv_before.py"  # the reader as it was before streaming into arrays (commit a27bc86)
    source = subprocess.run(["git", "show", "a27bc86:core/data/formats/csvfmt.py"], cwd=REPO, capture_output=True, text=True)
    old.write_text(source.stdout, encoding="utf-8")
    probe = (
        "import sys, time, importlib.util\n"
        "from mtrec.training.memory import PeakMemory\n"
        "spec = importlib.util.spec_from_file_location('reader', sys.argv[1]); mod = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "with PeakMemory() as p:\n"
        "    t = time.perf_counter(); src = mod.read_csv(sys.argv[2], domain='D', options={'items': False}); t = time.perf_counter() - t\n"
        "print(p.rss_mb, t, sum(len(s) for s in src.sequences.values()))\n"
    )
    out = {}
    for label, module in (("before (tuple per line)", old), ("streaming (arrays)", REPO / "core/data/formats/csvfmt.py")):
        if label.startswith("before") and not source.stdout:
            continue
        proc = subprocess.run([PY, "-c", probe, str(module), str(path)], capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            out[label] = None
            log(f"stream probe {label} failed: {proc.stderr[-500:]}")
            continue
        rss, secs, n = proc.stdout.split()
        out[label] = {"peak_rss_mb": float(rss), "seconds": float(secs), "interactions": int(n)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--stream-lines", type=int, default=2_000_000)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mtrec-ops-bench-"))
    env = thread_env(1)
    env.update(MTREC_HOME=str(tmp / "home"), MTREC_CACHE_DIR=str(tmp / "cache"),
               MTREC_REGISTRY_URL=f"sqlite:///{tmp / 'registry.db'}", TORCH_CPP_LOG_LEVEL="ERROR")
    settings = ["training.threads=1", f"training.epochs={opts.epochs}", "training.patience=10"]
    base = ["run", "--plugin", "sasrec", "--quick", "--no-progress"] + [x for s in settings for x in ("--set", s)]
    command = "mtrec run --plugin sasrec --quick " + " ".join(f"--set {s}" for s in settings)
    results: dict = {"started": dt.datetime.now().isoformat(timespec="minutes"), "machine": machine_info()}
    with LoadSampler() as load:
        log("warm the dataset cache")
        mtrec_run(["data", "stats", "amazon-mini"], env)
        log("one process")
        proc, wall = mtrec_run(base + ["--metrics-json", str(tmp / "one.json"), "--name", "one"], env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results["one"] = {"wall": wall, "metrics": json.loads((tmp / "one.json").read_text())}
        log(f"one process: {wall:.0f}s; torchrun 2 x gloo")
        torchrun = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        proc, wall = mtrec_run(base + ["--metrics-json", str(tmp / "two.json"), "--name", "two"], env, prefix=torchrun)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results["two"] = {"wall": wall, "metrics": json.loads((tmp / "two.json").read_text())}
        log(f"ddp: {wall:.0f}s; kill -9 in stage 2, epoch 2")
        stage = results["one"]["metrics"]["stages"][1]["name"]
        proc, killed_wall = mtrec_run(base + ["--name", "killed"], env, runner=True,
                                      extra_env={"MTREC_TEST_FAULT": f"stage:{stage}:2"})
        killed_rc = proc.returncode
        run_id = sorted(p.name for p in (tmp / "home" / "runs").iterdir()
                        if json.loads((p / "config.json").read_text()).get("name") == "killed")[0]
        log(f"killed rc={proc.returncode} after {killed_wall:.0f}s; resume {run_id}")
        last = sorted((tmp / "home" / "runs" / run_id / "checkpoints" / "resume").glob("*.last.pt"))
        ckpt_mb = last[0].stat().st_size / 2**20 if last else float("nan")
        proc, resume_wall = mtrec_run(["run", "--resume", run_id, "--no-progress", "--metrics-json",
                                       str(tmp / "resumed.json")], env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        resumed = json.loads((tmp / "resumed.json").read_text())
        results["resume"] = {"killed_rc": killed_rc, "killed_wall": killed_wall, "resume_wall": resume_wall,
                             "stage": stage, "metrics": resumed, "checkpoint_mb": ckpt_mb}
        log("streaming a large CSV")
        results["stream"] = stream_memory(opts.stream_lines, tmp)
    results["load"] = load.summary()
    (REPO / "benchmarks" / "operations.json").write_text(json.dumps(results, indent=2, default=str))
    write_section(BENCHMARKS_MD, "operations", render(results, command, opts))
    shutil.rmtree(tmp, ignore_errors=True)
    log("done")


def render(r: dict, command: str, opts: argparse.Namespace) -> str:
    m = r["machine"]
    one, two, res = r["one"]["metrics"], r["two"]["metrics"], r["resume"]["metrics"]
    avg = lambda x, k: x["test"]["average"][k]  # noqa: E731
    lines = [
        "## Operations: DDP, resume after kill -9, peak memory per stage, streaming import",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.0f} GiB, torch {m['torch']}, CPU only "
        f"(no GPU was lent to the session that ran this, so there is no nccl row). Date: {r['started']}. "
        f"Load (1-min average) during the runs: mean {r['load']['mean_1min']:.1f}, max {r['load']['max_1min']:.1f} "
        "on a machine shared with other jobs: wall times are noisy.",
        "",
        f"Command: `{command}` (SASRec, `single-domain`: one stage per domain of amazon-mini, {opts.epochs} epochs, "
        "validation on 300 sampled users per domain; test on every user, full ranking). "
        "`torchrun --standalone --nproc_per_node=2 -m mtrec ...` for DDP (gloo, 2 processes on the same 2 cores, "
        "so no speed-up is expected here). Script: `python benchmarks/operations.py`.",
        "",
        "| run | wall s | test recall@10 | test ndcg@10 | test users |",
        "|---|---|---|---|---|",
        f"| one process | {r['one']['wall']:.0f} | {avg(one, 'recall@10'):.4f} | {avg(one, 'ndcg@10'):.4f} | {one['counts']['average']} |",
        f"| torchrun, 2 x gloo | {r['two']['wall']:.0f} | {avg(two, 'recall@10'):.4f} | {avg(two, 'ndcg@10'):.4f} | {two['counts']['average']} |",
        f"| killed (kill -9 in `{r['resume']['stage']}`, epoch 2) + `--resume` | {r['resume']['killed_wall']:.0f} + "
        f"{r['resume']['resume_wall']:.0f} | {avg(res, 'recall@10'):.4f} | {avg(res, 'ndcg@10'):.4f} | {res['counts']['average']} |",
        "",
        f"Resumed metrics equal the uninterrupted run's exactly: **{res['test'] == one['test']}**. "
        f"The per-epoch resume checkpoint of a stage (model, optimizer, best state, RNG) is {r['resume']['checkpoint_mb']:.2f} MiB. "
        "DDP metrics differ from one process's because ranks draw different dropout masks and average per-rank "
        "mean losses (see docs/operations.md); with this few epochs both are small and their gap is noise-level, "
        "not a quality comparison. DDP's wall time is not a speed-up measurement either: both ranks run on the same "
        "2 cores, shared with other jobs.",
        "",
        "Per stage (wall seconds including validation; peak RSS of the process during the stage, reset at the stage start):",
        "",
        "| stage | one process s | peak RSS MiB | torchrun rank 0 s | peak RSS MiB (rank 0) | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for (name, s1, m1, e1), (_, s2, m2, _) in zip(stage_rows(one), stage_rows(two)):
        lines.append(f"| {name} | {s1:.1f} | {m1:.0f} | {s2:.1f} | {m2:.0f} | {e1} |")
    stream = r["stream"]
    lines += ["", f"Reading a {opts.stream_lines:,}-row CSV of interactions (50,000 users, 20,000 items), "
              "peak RSS of the reading process (including ~200 MiB of imported libraries):", "",
              "| reader | peak RSS MiB | seconds |", "|---|---|---|"]
    for label, row in stream.items():
        if row:
            lines.append(f"| {label} | {row['peak_rss_mb']:.0f} | {row['seconds']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
