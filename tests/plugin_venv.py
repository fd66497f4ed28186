"""Fresh virtual environments for plugin tests: install a plugin there, run mtrec there.

``python -m venv --system-site-packages`` exposes the *base* interpreter's packages; when the
tests themselves run inside a virtual environment (the Makefile's ``.venv``), mtrec, torch and
the method plugins live in that environment instead.  A ``.pth`` file in the new environment
adds the parent's site-packages with :func:`site.addsitedir`, which also runs the parent's own
``.pth`` files (editable installs), so the new environment sees mtrec exactly as the parent
does, while what is installed there (the plugin under test) stays there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fresh_venv(folder: Path) -> Path:
    """Create a virtual environment in ``folder`` that sees this one's packages; return its python."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
                   check=True, timeout=120)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(purelib, "_mtrec_parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def pip_install(python: Path, project: Path) -> None:
    """Install ``project`` (not editable) into the environment of ``python``: no network, no deps.

    pip builds a local project in its own folder (``build/``, ``*.egg-info``); a copy is built
    instead, so tests leave the source tree as they found it and stale build files never leak in.
    """
    staging = Path(tempfile.mkdtemp(prefix="mtrec-plugin-build-")) / project.name
    shutil.copytree(project, staging, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    try:
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
             "--no-build-isolation", "--no-index", str(staging)],
            capture_output=True, text=True, timeout=300, env=child_env())
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr


def child_env() -> dict[str, str]:
    """This process's environment (isolated MTREC_HOME / cache) for a one-thread child process."""
    env = {k: v for k, v in os.environ.items() if k not in ("MTREC_LOAD_PLUGINS", "PYTHONPATH")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def mtrec(python: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run ``python -m mtrec ARGS`` (the CLI of the environment of ``python``)."""
    return subprocess.run([str(python), "-m", "mtrec", *args], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), cwd=REPO)


def in_venv(python: Path, module_name: str) -> bool:
    """Whether ``module_name`` is installed inside that environment (not merely visible from the parent)."""
    code = (f"import importlib.util, sys; spec = importlib.util.find_spec({module_name!r}); "
            "print(spec is not None and spec.origin.startswith(sys.prefix))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, env=child_env())
    return out.stdout.strip() == "True"
