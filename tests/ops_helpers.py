"""Helpers of the operations tests (DDP, resume, faults): a tiny learnable dataset and CLI runs.

The dataset is synthetic and small so that a whole ``mtrec run`` takes seconds: two domains of
40 items; each user walks through a domain's items in steps of +1 (with a seeded random start
and an occasional jump), so SASRec learns it in a few epochs and metrics are far from zero --
which makes "same metrics" comparisons meaningful.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

TINY_SETTINGS = [
    "training.threads=1", "encoder.params.hidden=16", "encoder.params.layers=1", "encoder.params.heads=1",
    "encoder.params.dropout=0.1", "encoder.params.attn_dropout=0.1", "training.batch_size=32",
    "training.epochs=3", "training.patience=5", "data.max_len=8",
]


def write_tiny_dataset(folder: Path, users: int = 96, items: int = 40, seed: int = 7) -> Path:
    """A CSV dataset (two domains, ``users`` users) and its spec; returns the spec file."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["user,item,timestamp,domain"]
    t = 1_700_000_000
    for u in range(users):
        for domain in ("A", "B"):
            pos = rng.randrange(items)
            for _ in range(rng.randint(5, 9)):
                t += 1
                rows.append(f"u{u},{domain}{pos},{t},{domain}")
                pos = (pos + 1) % items if rng.random() < 0.85 else rng.randrange(items)
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = folder / "dataset.yaml"
    spec.write_text(
        "name: tiny\nkcore: 0\nsplit: leave-one-out\nsources:\n"
        f"  - format: csv\n    path: {folder / 'interactions.csv'}\n    options: {{items: false}}\n",
        encoding="utf-8",
    )
    return spec


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MTREC_HOME=str(home / "home"),
               MTREC_CACHE_DIR=str(home / "cache"), MTREC_REGISTRY_URL=f"sqlite:///{home / 'registry.db'}",
               TORCH_CPP_LOG_LEVEL="ERROR")
    env.pop("MTREC_DEBUG", None)
    return env


def run_args(spec: Path, *extra: str, settings: list[str] | None = None) -> list[str]:
    args = ["run", "--plugin", "sasrec", "--dataset", str(spec), "--no-progress"]
    for item in (settings if settings is not None else TINY_SETTINGS):
        args += ["--set", item]
    return args + list(extra)


def mtrec(args: list[str], home: Path, *, prefix: list[str] | None = None, timeout: int = 300,
          runner: Path | None = None, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process (``runner`` replaces ``-m mtrec``, e.g. a fault-injecting script)."""
    env = env_for(home)
    env.update(extra_env or {})
    command = (prefix or [PYTHON]) + ([str(runner)] if runner else ["-m", "mtrec"]) + args
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def read_metrics(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
