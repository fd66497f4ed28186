"""What every benchmark script shares: logging, load sampling, machine description, thread
pinning, and writing one named section of docs/benchmarks.md without touching the others.

Scripts run as ``python benchmarks/NAME.py``, so this module is importable as ``benchkit``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"
# Run folders and result files of every benchmark (git-ignored).  Inside the checkout rather than in
# /tmp or ~/.cache, so that ``--resume`` finds an earlier session's finished runs on the same clone.
WORK_ROOT = Path(os.environ.get("MTREC_BENCH_WORK", REPO / "benchmarks" / ".work"))


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


class LoadSampler:
    """Samples the 1-minute load average every few seconds while a run goes on."""

    def __init__(self, every: float = 15.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "LoadSampler":
        self.start = os.getloadavg()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.end = os.getloadavg()

    def summary(self) -> dict:
        samples = self.samples or [self.start[0], self.end[0]]
        return {"start": list(self.start), "end": list(self.end),
                "mean_1min": mean(samples), "max_1min": max(samples)}


def machine_info() -> dict:
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            model = m.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    import torch

    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": ram_gib, "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only on both sides
    return env


def mtrec_run_command(args: list[str], registry: Path, metrics: Path, overrides: dict | None = None) -> list[str]:
    """``mtrec run ARGS`` recording into ``registry``, writing ``metrics``, with ``--set`` overrides
    (values JSON-encoded unless already strings)."""
    cmd = [str(Path(sys.executable).parent / "mtrec"), "run", *args, "--registry", f"sqlite:///{registry}",
           "--no-progress", "--metrics-json", str(metrics)]
    for key, value in (overrides or {}).items():
        cmd += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return cmd


def run_cli(label: str, cmd: list[str], run_dir: Path, env: dict, *, continuing: bool = False) -> dict:
    """Run one ``mtrec run`` subprocess (its log, command and metrics under ``run_dir``), sampling
    the load; exit with the log's tail if it fails.  Returns the metrics JSON the run wrote, plus
    ``wall_s``, ``cpu_s`` (the run's own user + system CPU seconds), ``load``, ``started`` and
    ``finished``.  ``continuing``: ``cmd`` is an ``mtrec run --resume`` of the run an earlier
    invocation started in ``run_dir``; its log is appended to and its command kept beside the first."""
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = Path(cmd[cmd.index("--metrics-json") + 1])
    metrics.unlink(missing_ok=True)
    (run_dir / ("command-continued.txt" if continuing else "command.txt")).write_text(shlex.join(cmd) + "\n",
                                                                                        encoding="utf-8")
    log(f"{label}: {'continuing' if continuing else 'running'} (log {run_dir / 'stdout.log'})")
    started = dt.datetime.now()
    with LoadSampler() as load, open(run_dir / "stdout.log", "a" if continuing else "w", encoding="utf-8") as out:
        if continuing:
            out.write(f"\n--- continued {started:%Y-%m-%d %H:%M:%S}: {shlex.join(cmd)}\n")
            out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        # wait4 gives this child's own CPU time, even when other runs go on beside it
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    if rc != 0:
        tail = (run_dir / "stdout.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{label} failed (exit {rc}):\n{tail}")
    result = json.loads(metrics.read_text(encoding="utf-8"))
    return {**result, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "load": load.summary(),
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now().isoformat(timespec="seconds")}


def unfinished_run(home: Path, name: str, expected: dict) -> str | None:
    """The id of the newest run under ``home/runs`` named ``name`` that did not finish (no
    ``metrics.json``) and whose config holds every dotted ``expected`` key at its value, or None.

    A benchmark killed with its session leaves such a run; ``mtrec run --resume ID`` continues it
    from its last checkpoint instead of training it again.  A run whose config differs from what
    the benchmark would run now (a row redefined since) is not continued."""
    runs = home / "runs"
    for folder in sorted(runs.iterdir() if runs.is_dir() else (), reverse=True):  # ids start with the time
        config_path = folder / "config.json"
        if (folder / "metrics.json").exists() or not config_path.is_file():
            continue
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if config.get("name") != name:
            continue
        if all(_dotted(config, key) == value for key, value in expected.items()):
            return folder.name
        log(f"{name}: unfinished run {folder.name} has another config; not continuing it")
    return None


def _dotted(config: dict, key: str):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def run_kept(label: str, cmd: list[str], run_dir: Path, env: dict, *, resume: bool, extra: dict) -> dict:
    """``run_cli`` once per run folder: with ``resume`` a ``result.json`` an earlier invocation left in
    ``run_dir`` is returned as it is; otherwise the run goes and its result, with ``extra`` (the
    method, seed, overrides, ... the report needs) merged in, is written there."""
    kept = run_dir / "result.json"
    if resume and kept.is_file():
        log(f"{label}: kept from an earlier run")
        return json.loads(kept.read_text(encoding="utf-8"))
    result = {**run_cli(label, cmd, run_dir, env), **extra}
    tmp = kept.with_name(kept.name + ".tmp")  # a run killed while writing must not look finished
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    tmp.replace(kept)
    return result


def load_kept(run_dir: Path) -> dict | None:
    """The ``result.json`` of a finished run folder (see ``run_kept``), or None."""
    kept = run_dir / "result.json"
    return json.loads(kept.read_text(encoding="utf-8")) if kept.is_file() else None


# ----------------------------------------------------------------------------- seeded comparisons
# The rule every seeded section applies (benchmarks/claims.py applies the same one to the records):
# a paired difference counts only beyond Z standard errors, and only when no stage of either side was
# stopped by its epoch cap.
Z = 2.0


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def paired_difference(a: list[float], b: list[float]) -> dict:
    """``a − b`` seed by seed (the lists in the same seed order): the differences, their mean, sample
    sd and standard error sd/√n (sd and SE None with one seed)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_difference needs two equally long, non-empty lists")
    diffs = [x - y for x, y in zip(a, b)]
    mean_, sd = mean_std(diffs)
    return {"diffs": diffs, "mean": mean_, "sd": sd, "se": sd / math.sqrt(len(diffs)) if sd is not None else None}


def capped_stages(results: dict[tuple[str, int], dict], methods) -> list[str]:
    """``METHOD seed SEED `STAGE` `` for every stage of ``methods``' runs that the epoch cap stopped
    (the ``capped`` flag the trainer records in each stage)."""
    return [f"{method} seed {seed} `{s['name']}`" for (method, seed), res in results.items() if method in methods
            for s in res["stages"] if s.get("capped")]


def seed_verdict(diff: dict, capped: list[str], a_name: str, b_name: str) -> str:
    """The verdict on a ``paired_difference`` of ``a_name`` − ``b_name`` under the rule above."""
    if diff["se"] is None:
        return "undecided (one seed: no standard error)"
    if capped:
        return f"undecided ({len(capped)} stage(s) stopped by the epoch cap, not by early stopping)"
    if diff["mean"] > Z * diff["se"]:
        return f"{a_name} > {b_name}"
    if diff["mean"] < -Z * diff["se"]:
        return f"{b_name} > {a_name}"
    return "no difference"


def stages_text(res: dict) -> str:
    """``NAME EPOCHS_RUN (BEST_EPOCH[, capped])`` for each training stage of a run."""
    return "; ".join(f"{s['name']} {s['epochs_run']} ({s['best_epoch']}{', **capped**' if s.get('capped') else ''})"
                     for s in res["stages"])


def pm(mean_: float, sd: float | None) -> str:
    return f"{mean_:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")


def seeded_run_table(results: dict, seeds: list[int], summary: dict, *, methods, columns, compared,
                     subject: str, headline: str = "ndcg@10") -> list[str]:
    """A seeded section's table: every run (``results[(method, seed)]``), each method's mean ± std and
    ``subject`` − each method in ``compared``, paired by seed (``summary`` as the scripts' ``summarise``)."""
    rows = ["| method | seed | " + " | ".join(f"{d} NDCG@10" for d in columns)
            + " | training stages: epochs (best) | capped | CPU min | wall min | load |",
            "|---|---:|" + "---:|" * len(columns) + "---|---|---:|---:|---:|"]
    for method in methods:
        for seed in seeds:
            res = results[(method, seed)]
            capped = any(s.get("capped") for s in res["stages"])
            rows.append(f"| `{method}` | {seed} | " + " | ".join(f"{res['test'][d][headline]:.4f}" for d in columns)
                        + f" | {stages_text(res)} | {'**yes**' if capped else 'no'} | {res['cpu_s'] / 60:.1f} | "
                        f"{res['wall_s'] / 60:.1f} | {res['load']['mean_1min']:.1f} |")
    for method in methods:
        cpu = statistics.fmean(results[(method, s)]["cpu_s"] for s in seeds) / 60
        wall = statistics.fmean(results[(method, s)]["wall_s"] for s in seeds) / 60
        rows.append(f"| **`{method}` mean ± std** | {len(seeds)} seeds | "
                    + " | ".join(pm(*summary["methods"][method][d][headline]) for d in columns)
                    + f" | | | {cpu:.1f} | {wall:.1f} | |")
    for other in compared:
        cells = [f"{x['mean']:+.4f}" + (f" (SE {x['se']:.4f})" if x["se"] is not None else "")
                 for x in (summary["vs"][other]["paired"][d] for d in columns)]
        rows.append(f"| **paired difference {subject} − {other}** | {len(seeds)} seeds | " + " | ".join(cells)
                    + " | | | | | |")
    return rows


def seeded_header_lines(results: dict, args, machine: dict) -> list[str]:
    """A seeded section's Machine, When and Load lines, from the runs' own records (threads and runs at a
    time as they ran, their start and end, the load each saw)."""
    loads = [r["load"]["mean_1min"] for r in results.values()]
    when = (f"{min(r['started'] for r in results.values())[:16].replace('T', ' ')} – "
            f"{max(r['finished'] for r in results.values())[:16].replace('T', ' ')}")
    return [
        f"- **Machine:** {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']:.0f} GiB, torch "
        f"{machine['torch']}, Python {machine['python']}, CPU only. {max_setting(results, 'jobs', args.jobs)} run(s) "
        f"at a time, {max_setting(results, 'threads', args.threads)} torch thread(s) each; **CPU min** is each run's "
        "own user + system time (`wait4`), **wall min** its elapsed time.",
        f"- **When:** {when}.",
        f"- **Load:** mean 1-minute load average per run {min(loads):.1f}–{max(loads):.1f} (other work shared the "
        "cores; wall times are noisy, CPU minutes less so).",
    ]


def seeded_verdict_lines(summary: dict, *, compared: dict[str, str], columns, subject: str) -> list[str]:
    """For each compared method (name -> its role) and column: the paired difference, per seed, and its verdict."""
    out = []
    for other, role in compared.items():
        vs = summary["vs"][other]
        out += ["", f"{subject} − {other} ({role}), NDCG@10:"]
        for d in columns:
            x = vs["paired"][d]
            bound = f"{Z:.0f} SE = {Z * x['se']:.4f}" if x["se"] is not None else "no SE"
            per_seed = ", ".join(f"{v:+.4f}" for v in x["diffs"])
            out.append(f"- {d}: mean paired difference {x['mean']:+.4f} (per seed {per_seed}; {bound}) → "
                       f"**{vs['verdicts'][d]}**")
    return out


def seeded_summary_record(summary: dict, seeds: list[int], *, subject: str, headline: str, rule: str) -> dict:
    """The ``summary`` part of a seeded section's record (what benchmarks/claims.py reads): each method's
    mean/std per column and metric, and ``subject`` − each compared method: paired differences, verdicts and
    the capped stages behind them."""
    vs = summary["vs"]
    return {
        "methods": {m: {d: {k: {"mean": v[0], "std": v[1], "n": len(seeds)} for k, v in ms.items()}
                        for d, ms in per_domain.items()} for m, per_domain in summary["methods"].items()},
        "paired": {f"{subject} - {o}": {d: {"metric": headline, **x} for d, x in v["paired"].items()}
                   for o, v in vs.items()},
        "verdicts": {f"{subject} - {o}": v["verdicts"] for o, v in vs.items()},
        "capped_by_comparison": {f"{subject} - {o}": v["capped"] for o, v in vs.items()},
        "capped": summary["capped"],
        "rule": rule,
    }


# What a seeded record keeps of each training stage (claims.py reads the cap, the best epoch and the flags).
RECORD_STAGE_KEYS = ("name", "epochs_run", "best_epoch", "best_value", "epoch_cap", "capped", "seconds")


def seeded_row_record(method: str, seed: int, res: dict, *, recipe: str, label: str, dataset: str, loss: str,
                      per_stage: dict | None = None, extra: dict | None = None) -> dict:
    """One row of a seeded section's record: a (method, seed) run's test metrics, users, stages (with
    ``per_stage`` -- patience, validation interval -- added to each, and ``intermediate`` where the run
    recorded it), costs and command, and ``extra`` (what only that section reports) before the costs."""
    stages = [{k: s.get(k) for k in RECORD_STAGE_KEYS}
              | ({"intermediate": s["intermediate"]} if "intermediate" in s else {}) | (per_stage or {})
              for s in res["stages"]]
    return {
        "recipe": recipe, "key": method, "setting": "", "label": label, "seed": seed, "dataset": dataset,
        "loss": loss, "test": res["test"], "counts": res["counts"], "stages": stages, **(extra or {}),
        "cpu_s": res["cpu_s"], "wall_s": res["wall_s"], "load": res["load"], "started": res["started"],
        "finished": res["finished"], "run_id": res.get("run_id"), "overrides": res["overrides"],
        "command": res.get("command"),
    }


def seeded_record(results: dict, rows: list[dict], summary: dict, *, args, machine: dict, title: str, script: str,
                  section: str, protocol: str, domains, smoke: bool, metric: str = "ndcg@10",
                  extra: dict | None = None) -> dict:
    """A seeded section's record (``save_results`` writes it, claims.py reads it): the machine with the
    threads and runs at a time the runs had, the command, protocol, seeds, ``rows`` (``seeded_row_record``),
    the ``summary`` (``seeded_summary_record``) and the total CPU time; ``extra`` goes before the rows."""
    return {
        "title": title, "smoke": smoke,
        "machine": {**machine, "threads": max_setting(results, "threads", args.threads),
                    "at_a_time": max_setting(results, "jobs", args.jobs)},
        "command": script_command(script, args, section),
        "protocol": protocol, "seeds": args.seeds, "metric": metric, "domains": list(domains), **(extra or {}),
        "rows": rows, "summary": summary, "total_cpu_s": sum(r["cpu_s"] for r in results.values()),
    }


def record_path(args, section: str) -> str:
    """Where a pooled script's record goes, as its section names it: relative to the checkout for the
    committed one."""
    path = (args.json_dir / f"{section}.json").resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def run_seeded(method: str, seed: int, *, recipe: str, dataset: str, sets: dict, args, env: dict, section: str,
               columns, headline: str = "ndcg@10") -> dict:
    """One (method, seed) run of a seeded section as a kept ``mtrec run`` (``args.work/METHOD-SEED``), its
    record carrying what the section reports (method, seed, overrides, command, jobs, threads)."""
    run_dir = args.work / f"{method}-{seed}"
    cmd = mtrec_run_command(["--plugin", recipe, "--dataset", dataset, "--name", f"{section}-{method}-{seed}"],
                            run_dir / "registry.db", run_dir / "metrics.json", sets)
    result = run_kept(f"{method} seed {seed}", cmd, run_dir, env, resume=args.resume,
                      extra={"recipe": recipe, "method": method, "seed": seed, "overrides": sets,
                             "command": cmd[1:], "jobs": args.jobs, "threads": args.threads})
    log(f"{method} seed {seed}: test {headline} " + ", ".join(f"{d} {result['test'][d][headline]:.4f}" for d in columns)
        + f"; {result['cpu_s'] / 60:.1f} CPU-min, {result['wall_s'] / 60:.1f} min wall")
    return result


def run_in_pool(todo: list[tuple[str, int]], jobs: int, one) -> dict:
    """``one(method, seed)`` for every pair of ``todo``, ``jobs`` at a time; on the first failure cancel what
    has not started and raise."""
    results: dict = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, m, s): (m, s) for m, s in todo}
        for future in as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
    return results


def max_setting(results: dict, key: str, default: int) -> int:
    """The most runs at a time / torch threads any run had (recorded per run: --render-only or --resume
    may be called with other values than the runs were)."""
    return max(r.get(key, default) for r in results.values())


def gather_seeded_runs(run_all, args, methods) -> dict | None:
    """Run what ``args`` asks (``run_all(todo, args)`` over (method, seed) pairs, seed-major, so that a
    cut-short benchmark still holds whole seeds; nothing with ``--render-only``), add the runs an earlier
    call kept in ``args.work``, and return every (method, seed) in the tables' order -- or None, with a
    log line, while some run is missing."""
    todo = [] if args.render_only else [(m, s) for s in args.seeds for m in methods if m in args.only]
    results = run_all(todo, args)
    for seed in args.seeds:
        for method in methods:
            if (method, seed) not in results and (kept := load_kept(args.work / f"{method}-{seed}")) is not None:
                results[(method, seed)] = kept
    missing = [f"{m} {s}" for s in args.seeds for m in methods if (m, s) not in results]
    if missing:
        log(f"not rendering: runs missing ({', '.join(missing)})")
        return None
    return {(m, s): results[(m, s)] for m in methods for s in args.seeds}


# ----------------------------------------------------------------------------- data


def add_seeded_arguments(parser, methods, section: str) -> None:
    """The options every seeded comparison script shares: which seeds and methods, threads per run,
    where run folders live, reuse of finished runs, and the doc the section goes to."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025, 2026])
    parser.add_argument("--only", nargs="+", choices=methods, default=list(methods),
                        help="run only these methods (the section needs all; kept runs fill in the rest)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run [1]")
    parser.add_argument("--work", type=Path, default=None, help=f"run folders [{WORK_ROOT / section}]")
    parser.add_argument("--resume", action="store_true", help="keep runs an earlier invocation finished")
    parser.add_argument("--out", type=Path, default=None, help="the doc [docs/benchmarks.md]")


def add_pooled_arguments(parser, smoke_help: str) -> None:
    """The options of the scripts that run their seeds in a pool (``run_in_pool``) and keep a record
    in ``benchmarks/results/``: runs at a time, re-rendering without training, the record's folder and
    a smoke mode; ``resolve_output_paths`` turns them into paths once parsed."""
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time [2]")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the section and the json from the finished runs in --work; train nothing")
    parser.add_argument("--json-dir", type=Path, default=None,
                        help=f"folder of the record [{RESULTS_DIR} with the real doc, else --out's folder]")
    parser.add_argument("--smoke", action="store_true", help=smoke_help)


def parse_pooled(argv: list[str], *, description: str, methods, section: str, smoke_help: str,
                 smoke_seeds: int | None = None) -> argparse.Namespace:
    """The command line of a pooled seeded script (``add_seeded_arguments`` + ``add_pooled_arguments``), its
    output paths resolved; ``smoke_seeds``: a smoke run takes the first that many seeds unless ``--seeds``
    names them."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seeded_arguments(parser, methods, section)
    seeds = parser.get_default("seeds")
    parser.set_defaults(seeds=None)
    add_pooled_arguments(parser, smoke_help)
    args = parser.parse_args(argv)
    args.argv = argv
    args.seeds = args.seeds or (seeds[:smoke_seeds] if args.smoke and smoke_seeds else seeds)
    resolve_output_paths(args, section)
    return args


def resolve_output_paths(args, section: str) -> None:
    """Fill ``args.work``, ``args.out`` and ``args.json_dir``: a smoke run never touches the real doc,
    record or run folders, and the committed record belongs to the real doc only (a trial ``--out``
    keeps its record beside it)."""
    if args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix=f"{section}-smoke-"))
        args.work = args.work or tmp / "work"
        args.out = args.out or tmp / "benchmarks.md"
    args.work = (args.work or WORK_ROOT / section).resolve()
    args.out = args.out or BENCHMARKS_MD
    real_doc = args.out.resolve() == BENCHMARKS_MD.resolve()
    args.json_dir = args.json_dir or (RESULTS_DIR if real_doc else args.out.resolve().parent)


def script_command(script: str, args, section: str) -> str:
    """The command line the section names: this invocation's, except that a ``--render-only`` pass
    trains nothing and keeps the command of the invocation that trained the runs (from the record)."""
    own = f"python benchmarks/{script}" + (" " + " ".join(args.argv) if args.argv else "")
    record = args.json_dir / f"{section}.json"
    if getattr(args, "render_only", False) and record.is_file():
        return json.loads(record.read_text()).get("command") or own
    return own


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->`` block of ``path`` (append it if
    absent), atomically, so several benchmark scripts can each own one section of one file."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if start in text and end in text and text.index(start) < text.index(end):
            a, b = text.index(start), text.index(end) + len(end)
            text = text[:a] + block + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = ("# Benchmarks\n\nMeasured numbers for mtrec. Each section names the machine it ran on; timings "
                "on the project's shared 2-core CPU machines are noisy and comparable only within one table.\n\n"
                + block + "\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ----------------------------------------------------------------------------- results

RESULTS_DIR = REPO / "benchmarks" / "results"


def save_results(section: str, payload: dict, *, root: Path | None = None) -> Path:
    """Write ``benchmarks/results/SECTION.json`` (or ``root/SECTION.json``) atomically and return its path.

    The file is the committed, machine-readable record of one section of docs/benchmarks.md: its rows
    with their numbers, seeds, test users per domain and training stages (epochs run, best epoch,
    epoch cap), the machine, when it ran, the load and the command.  ``benchmarks/claims.py`` reads
    these files (never the git-ignored run folders) to render the claims table.  NaN and infinite
    floats become ``null`` so the file stays strict JSON; the top-level ``"section"`` key is
    ``section``.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", section):
        raise ValueError(f"bad section name {section!r}")
    if payload.get("section", section) != section:
        raise ValueError(f"payload is for section {payload['section']!r}, not {section!r}")

    from mtrec.files import atomic_write_text, strict_json_text

    path = (Path(root) if root is not None else RESULTS_DIR) / f"{section}.json"
    atomic_write_text(path, strict_json_text({"section": section, **payload}, default=str) + "\n")
    return path
