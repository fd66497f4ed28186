"""What every benchmark script shares: logging, load sampling, machine description, thread
pinning, and writing one named section of docs/benchmarks.md without touching the others.

Scripts run as ``python benchmarks/NAME.py``, so this module is importable as ``benchkit``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import threading
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"


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


# ----------------------------------------------------------------------------- data


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
