"""The SQL experiment registry: every ``mtrec run`` is recorded here.

Runs of different methods, datasets and machines can be listed, compared and reused::

    from mtrec.registry import open_registry

    reg = open_registry()            # $MTREC_REGISTRY_URL, else <data_dir()>/registry.db
    run_id = reg.start_run(name=None, recipe="gmc", config=cfg, config_hash=h, seed=0, device="cuda:0",
                           dataset_name="amazon4", dataset_spec=spec, dataset_fingerprint=fp,
                           components=[{"kind": "model", "name": "gmc", "plugin": "mtrec.builtins",
                                        "distribution": "mtrec", "version": "0.1.0"}])
    with reg.track(run_id):          # failed / interrupted are recorded on the way out
        ...
        reg.log_metrics(run_id, rows)
        reg.log_artifact(run_id, "identifier", path)
        reg.set_status(run_id, "finished")

The schema is created and upgraded by the alembic migrations shipped in
``mtrec.registry.migrations`` when a registry is opened.  See ``docs/registry.md``.
"""

from __future__ import annotations

from .errors import RegistryError, RunInterrupted
from .models import STATUSES, TERMINAL_STATUSES
from .store import ENV_URL, Registry, default_url, file_digest, mask_url, normalize_url, open_registry, resolve_url

__all__ = [
    "ENV_URL",
    "STATUSES",
    "TERMINAL_STATUSES",
    "Registry",
    "RegistryError",
    "RunInterrupted",
    "default_url",
    "file_digest",
    "mask_url",
    "normalize_url",
    "open_registry",
    "resolve_url",
]
