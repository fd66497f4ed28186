"""The store API of the experiment registry: what the engine and the CLI call."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import hashlib
import math
import os
import shutil
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from mtrec.paths import RUN_ID, data_dir

from . import migrate
from .errors import RegistryError
from .models import STATUSES, TERMINAL_STATUSES, Artifact, Component, Metric, Run

ENV_URL = "MTREC_REGISTRY_URL"
#: How long a writer waits for another process's write transaction on SQLite.
SQLITE_BUSY_TIMEOUT_S = 60.0
#: How long to wait for a PostgreSQL server to answer (unless the URL sets connect_timeout).
PG_CONNECT_TIMEOUT_S = 10

_COMPONENT_KEYS = ("kind", "name", "plugin", "distribution", "version")
_METRIC_REQUIRED = ("stage", "split", "domain", "name", "value")
_METRIC_KEYS = frozenset(_METRIC_REQUIRED + ("k", "step"))
_ANY: Any = object()

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- URLs


def default_url() -> str:
    """``sqlite:///<data_dir()>/registry.db``."""
    return "sqlite:///" + str((data_dir() / "registry.db").absolute())


def resolve_url(url: str | os.PathLike[str] | None = None) -> str:
    """The registry URL to use: ``url``, else ``$MTREC_REGISTRY_URL``, else :func:`default_url`.

    A value without ``://`` is taken as the path of a SQLite file.
    """
    raw = os.fspath(url) if url is not None else (os.environ.get(ENV_URL) or "").strip() or default_url()
    if "://" not in raw:
        raw = "sqlite:///" + str(Path(raw).expanduser().absolute())
    return raw


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (for messages and display)."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def normalize_url(url: str | URL) -> URL:
    """Parse a registry URL; plain ``postgresql://`` (or ``postgres://``) means psycopg 3."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise RegistryError(f"not a database URL: {url!r} ({exc})") from None
    if parsed.drivername in ("postgresql", "postgres"):  # psycopg 3 is the supported driver
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser().absolute()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ------------------------------------------------------------------------ engines


def _enable_wal(cur: Any) -> None:
    """Switch a SQLite database to WAL, retrying while another process holds its lock.

    Changing the journal mode needs an exclusive lock and SQLite may report "database is
    locked" at once rather than wait on the busy timeout (several processes opening a new
    database together), so the wait is done here.
    """
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _make_engine(url: URL, *, for_migration: bool = False) -> Engine:
    kwargs: dict[str, Any] = {}
    if for_migration:
        kwargs["poolclass"] = NullPool
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)
        foreign_keys = "OFF" if for_migration else "ON"

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy (the "begin" hook below) decide where transactions start,
            # instead of the sqlite3 module's implicit BEGIN before DML only.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
                _enable_wal(cur)
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute(f"PRAGMA foreign_keys = {foreign_keys}")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock up front (BEGIN IMMEDIATE) so that they queue on
            # the busy timeout instead of failing with "database is locked" when a
            # read transaction would have to be upgraded to a write one.
            mode = conn.get_execution_options().get("mtrec_sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if backend == "postgresql":
        connect_args = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)
    return create_engine(url, pool_pre_ping=True, **kwargs)


# ------------------------------------------------------------------------ hashing


def file_digest(path: Path) -> tuple[str, int]:
    """``(sha256 hex, bytes)`` of a file, or of a folder (its files, in path order)."""
    h = hashlib.sha256()
    if path.is_dir():
        total = 0
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            rel = p.relative_to(path).as_posix().encode()
            h.update(len(rel).to_bytes(8, "big") + rel)
            sub, n = file_digest(p)
            h.update(bytes.fromhex(sub) + n.to_bytes(8, "big"))
            total += n
        return h.hexdigest(), total
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


# ----------------------------------------------------------------------- registry


def _db_errors(fn: F) -> F:
    """Turn database failures (unreachable, read-only, locked too long) into RegistryError."""

    @functools.wraps(fn)
    def wrapper(self: Registry, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            if isinstance(exc, IntegrityError):
                raise
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise RegistryError(f"experiment registry at {self.url}: {reason}") from exc

    return wrapper  # type: ignore[return-value]


class Registry:
    """A handle on one registry database; get one with :func:`open_registry`.

    Every method runs in its own short transaction, so a handle may be shared by
    threads; processes open their own.
    """

    def __init__(
        self, url: str | URL, *, migrate_schema: bool = True, runs_root: str | os.PathLike[str] | None = None
    ) -> None:
        self._url = normalize_url(url)
        # Where run folders (<runs root>/<run id>) live on this machine.  Database rows never
        # decide which files the registry reads or deletes (a shared registry is writable by
        # every user of it); only this local setting and the folders this handle itself
        # recorded artifacts in (see _trusted_roots) do.
        self._runs_root: Path | None = None if runs_root is None else Path(runs_root).expanduser().absolute()
        self._own_roots: list[Path] = []
        self._roots_lock = threading.Lock()
        self.url: str = mask_url(self._url)
        self.sqlite_path: Path | None = _sqlite_file(self._url)
        if self.sqlite_path is not None:
            folder = self.sqlite_path.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = "a file is in the way" if exc.errno == errno.EEXIST else exc.strerror or str(exc)
                raise RegistryError(
                    f"cannot create the folder {folder} of the experiment registry {self.sqlite_path}: {reason}"
                ) from None
        try:
            self._engine = _make_engine(self._url)
        except (NoSuchModuleError, ImportError, ArgumentError) as exc:
            raise RegistryError(f"cannot use the registry URL {self.url}: {exc}") from None
        self._writer = self._engine.execution_options(mtrec_sqlite_begin="IMMEDIATE")
        if migrate_schema:
            self._migrate()

    # ----------------------------------------------------------------- lifecycle

    def _migrate(self) -> None:
        engine = _make_engine(self._url, for_migration=True)
        try:
            migrate.upgrade(engine, self.url)
        except RegistryError:
            self.close()
            raise
        except (SQLAlchemyError, OSError) as exc:
            self.close()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            where = f"{self.url} ({self.sqlite_path})" if self.sqlite_path else self.url
            raise RegistryError(f"cannot open the experiment registry at {where}: {reason}") from exc
        finally:
            engine.dispose()

    def close(self) -> None:
        """Release the database connections (the handle must not be used afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    @property
    def revision(self) -> str | None:
        """The schema revision of the database (the head revision once opened)."""
        with self._engine.connect() as conn:
            return migrate.current_revision(conn)

    def _read(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def _write(self) -> Session:
        return Session(self._writer, expire_on_commit=False)

    # --------------------------------------------------------------- run folders

    @property
    def runs_root(self) -> Path:
        """The folder holding run folders on this machine: ``runs_root`` given to the
        constructor, else ``<data_dir()>/runs`` (read when asked, so ``MTREC_HOME`` counts)."""
        return self._runs_root if self._runs_root is not None else data_dir() / "runs"

    def _trusted_roots(self) -> list[Path]:
        """Resolved folders whose ``<root>/<run id>`` may be a run's own folder: the local runs
        root, then the roots of run folders this handle logged artifacts in (the engine may be
        given another output root; what this process recorded itself it may read back)."""
        with self._roots_lock:
            own = list(self._own_roots)
        out: list[Path] = []
        for root in [self.runs_root.resolve(), *own]:
            if root not in out:
                out.append(root)
        return out

    def _inside_run_folder(self, rid: str, kind: str, raw: str, doing: str) -> Path:
        """The run's own folder that the (untrusted) recorded artifact path ``raw`` lies in,
        after resolving symlinks; RegistryError saying what was refused otherwise."""
        _check_folder_id(rid, doing)
        roots = self._trusted_roots()
        p = Path(raw)
        try:
            real = p.resolve() if p.is_absolute() else None
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop: a path leading nowhere
            real = None
        if real is not None:
            for root in roots:
                # both sides are resolved: a run folder that is itself a symlink (or any symlink
                # on the way) sends `real` elsewhere and fails this test
                if real != root / rid and real.is_relative_to(root / rid):
                    return root / rid
            where = f"{p}" + (f" (which resolves to {real})" if real != p else "")
        else:
            where = f"the relative path {raw!r}" if not p.is_absolute() else f"{raw!r}, which cannot be resolved"
        raise RegistryError(
            f"refusing to {doing}: artifact {kind!r} of run {rid} is recorded at {where}, outside the run's own "
            f"folder {roots[0] / rid}; the registry only reads or deletes files inside a run's folder"
        )

    @_db_errors
    def run_folder(self, run_id: str) -> Path:
        """The run's own folder on this machine (resolved), the only place whose files the
        registry reads or deletes for it; it need not exist.

        It is ``<runs_root>/<id>`` (or under the root of a folder this handle recorded
        artifacts in).  RegistryError when any artifact row of the run points outside it
        (symlinks resolved), or when the folder is a symlink or not a folder.  Code that
        reads a run's files (``metrics.json``, checkpoints) should find them here rather
        than next to a recorded artifact path.
        """
        with self._read() as s:
            rid = self._resolve(s, run_id)
            arts = s.execute(select(Artifact.kind, Artifact.path).where(Artifact.run_id == rid)
                             .order_by(Artifact.id)).all()
        doing = f"use the files of run {rid}"
        _check_folder_id(rid, doing)
        if arts:
            folder = self._inside_run_folder(rid, arts[0].kind, arts[0].path, doing)
            for kind, path in arts[1:]:  # every row must lie in that same folder
                if self._inside_run_folder(rid, kind, path, doing) != folder:
                    raise RegistryError(
                        f"refusing to {doing}: its artifacts {arts[0].kind!r} ({arts[0].path}) and {kind!r} "
                        f"({path}) are in two different run folders"
                    )
        else:
            candidates = [root / rid for root in self._trusted_roots()]
            folder = next((c for c in candidates if os.path.lexists(c)), candidates[0])
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise RegistryError(f"refusing to {doing}: {folder} is not a folder but a symbolic link or a file")
        return folder

    # ----------------------------------------------------------------------- ids

    def _resolve(self, session: Session, run_id: str, *, prefix: bool = True) -> str:
        run_id = str(run_id).strip()
        if not run_id:
            raise RegistryError("empty run id")
        if session.get(Run, run_id) is not None:
            return run_id
        if prefix:
            pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            matches = session.scalars(
                select(Run.id).where(Run.id.like(pattern, escape="\\")).order_by(Run.id).limit(6)
            ).all()
            if len(matches) == 1:
                return matches[0]
            if matches:
                more = ", ..." if len(matches) > 5 else ""
                raise RegistryError(
                    f"run id prefix {run_id!r} is ambiguous: it matches {', '.join(matches[:5])}{more}"
                )
        raise RegistryError(f"no run {run_id!r} in the experiment registry at {self.url}")

    @_db_errors
    def _exact(self, run_id: str) -> str:
        with self._read() as s:
            return self._resolve(s, run_id, prefix=False)

    @_db_errors
    def resolve(self, run_id: str) -> str:
        """The full id of the run whose id is ``run_id`` or starts with it."""
        with self._read() as s:
            return self._resolve(s, run_id)

    # ---------------------------------------------------------------------- runs

    @_db_errors
    def start_run(
        self,
        *,
        name: str | None,
        recipe: str,
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        device: str,
        dataset_name: str,
        dataset_spec: dict[str, Any],
        dataset_fingerprint: str,
        components: list[dict[str, Any]],
        host: str | None = None,
        run_id: str | None = None,
        tags: Iterable[str] | None = None,
        pid: int | None = None,
    ) -> str:
        """Record a new run with status ``running``; return its id.

        ``run_id`` (letters, digits, ``._-``, at most 64) is generated when not given:
        12 hex digits of a uuid4.  ``host`` defaults to this machine's host name and ``pid``
        to this process's id when ``host`` is this machine (``runs list`` calls a ``running``
        run *stale* once that process is gone).
        """
        this_host = socket.gethostname()
        if host is None:
            host = this_host
        if pid is None and host == this_host:
            pid = os.getpid()
        if run_id is not None and not RUN_ID.fullmatch(run_id):
            raise RegistryError(
                f"invalid run id {run_id!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        comp_rows = []
        for i, comp in enumerate(components or []):
            unknown = set(comp) - set(_COMPONENT_KEYS)
            if unknown or "kind" not in comp or "name" not in comp:
                raise ValueError(
                    f"component {i} must have keys kind, name (and plugin, distribution, version); got {sorted(comp)}"
                )
            comp_rows.append({key: (None if comp.get(key) is None else str(comp[key])) for key in _COMPONENT_KEYS})
        now = _utcnow()
        tag_list = _clean_tags(tags or [])
        for attempt in range(5):
            rid = run_id or uuid.uuid4().hex[:12]
            run = Run(
                id=rid,
                name=name,
                recipe=recipe,
                status="running",
                created_at=now,
                started_at=now,
                ended_at=None,
                host=host,
                pid=pid,
                device=device,
                seed=None if seed is None else int(seed),
                config=config,
                config_hash=config_hash,
                dataset_name=dataset_name,
                dataset_spec=dataset_spec,
                dataset_fingerprint=dataset_fingerprint,
                error=None,
                tags=tag_list,
                components=[Component(position=i, **row) for i, row in enumerate(comp_rows)],
            )
            try:
                with self._write() as s, s.begin():
                    s.add(run)
                return rid
            except IntegrityError:
                if run_id is not None:
                    raise RegistryError(f"a run with id {run_id!r} already exists in {self.url}") from None
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    @_db_errors
    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """Set the status; a terminal one (finished, failed, interrupted) also sets ``ended_at``.

        ``finished`` is final: its metrics and artifacts are what a later run may reuse, so a
        finished run cannot go back to running (``mtrec run --resume`` refuses it).
        """
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)}")
        with self._write() as s, s.begin():
            run = _locked(s, self._resolve(s, run_id, prefix=False))
            if run.status == "finished" and status != "finished":
                raise RegistryError(f"run {run.id} is finished; its status cannot become {status!r}")
            run.status = status
            run.error = error
            run.ended_at = _utcnow() if status in TERMINAL_STATUSES else None

    @_db_errors
    def resume_run(self, run_id: str) -> str:
        """Move a run that ended without finishing back to ``running``; return the status it had.

        The transitions are ``interrupted`` or ``failed`` -> ``running``.  A run still marked
        ``running`` is one whose process died without recording its end (SIGKILL, out of memory,
        power loss): it is first recorded as ``interrupted``, in its own transaction, and then
        resumed, so it also reports ``interrupted``.  The caller must make sure that process is
        gone (the engine holds the run folder's lock).  A finished run cannot be resumed.
        The run's ``host`` and ``pid`` become this process's: it is the one running it now.

        Both transactions lock the row, so of two processes resuming the same run at once
        one wins and the other is refused (rather than both believing they own the run).
        """
        with self._write() as s, s.begin():
            run = _locked(s, self._resolve(s, run_id, prefix=False))
            previous = run.status
            if previous == "finished":
                raise RegistryError(f"run {run.id} already finished; there is nothing to resume")
            if previous == "running":
                run.status, run.ended_at = "interrupted", _utcnow()
                run.error = "the process ended without recording how (killed with SIGKILL, out of memory?)"
        with self._write() as s, s.begin():
            run = _locked(s, run_id)
            if run.status not in ("interrupted", "failed"):  # someone else resumed or finished it meanwhile
                raise RegistryError(f"run {run.id} became {run.status!r} while it was being resumed; not resuming it")
            run.status, run.error, run.ended_at = "running", None, None
            run.host, run.pid = socket.gethostname(), os.getpid()
        return "interrupted" if previous == "running" else previous

    @_db_errors
    def set_tags(self, run_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
        """Add and remove tags of a run (id or unique prefix); return its tags.

        The row is locked while its list is edited, so concurrent taggers of one run queue
        instead of writing over each other's changes.
        """
        with self._write() as s, s.begin():
            run = _locked(s, self._resolve(s, run_id))
            gone = set(remove)
            tags = [t for t in (run.tags or []) if t not in gone]
            tags += [t for t in _clean_tags(add) if t not in tags]
            run.tags = tags
            return tags

    @_db_errors
    def get_run(self, run_id: str) -> dict[str, Any]:
        """Everything about a run (id or unique prefix), with components, metrics and artifacts."""
        with self._read() as s:
            run = s.get(Run, self._resolve(s, run_id))
            assert run is not None
            out = _run_dict(run)
            out["config"] = run.config
            out["dataset_spec"] = run.dataset_spec
            out["components"] = [
                {key: getattr(c, key) for key in _COMPONENT_KEYS} for c in run.components
            ]
            out["metrics"] = [_metric_dict(m) for m in run.metrics]
            out["artifacts"] = [_artifact_dict(a) for a in run.artifacts]
            return out

    @_db_errors
    def list_runs(
        self,
        recipe: str | None = None,
        dataset: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        *,
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, without config, metrics, artifacts and components."""
        if status is not None and status not in STATUSES:
            raise RegistryError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)}")
        q = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
        if recipe is not None:
            q = q.where(Run.recipe == recipe)
        if dataset is not None:
            q = q.where(Run.dataset_name == dataset)
        if status is not None:
            q = q.where(Run.status == status)
        with self._read() as s:
            runs = [_run_dict(r) for r in s.scalars(q if tag is not None or not limit else q.limit(limit))]
        if tag is not None:  # JSON containment differs per backend; filter here
            runs = [r for r in runs if tag in r["tags"]]
            if limit:
                runs = runs[:limit]
        return runs

    @_db_errors
    def count_runs(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(Run)) or 0)

    @_db_errors
    def delete_run(self, run_id: str, delete_files: bool = False) -> Path | None:
        """Remove a run (id or unique prefix) with its components, metrics and artifact rows.

        Files stay on disk unless ``delete_files``: then the run's whole folder goes
        (checkpoints, config, metrics and artifacts), after :meth:`run_folder` has checked
        it; when that check refuses, nothing at all is deleted.  Returns the folder removed
        (None without ``delete_files`` or when it did not exist).
        """
        rid = self.resolve(run_id)
        folder = None
        if delete_files:
            try:
                folder = self.run_folder(rid)
            except RegistryError as exc:
                raise RegistryError(f"{exc} (nothing was deleted)") from None
            if _folder_locked(folder):
                raise RegistryError(
                    f"refusing to delete the files of run {rid}: it is in progress (its process holds "
                    f"{folder / 'run.lock'}); stop it first (nothing was deleted)"
                )
        removed = None
        if folder is not None and os.path.lexists(folder):
            # Files before rows: if removing the folder fails half-way the run is still
            # recorded and the same command can be run again.
            try:
                shutil.rmtree(folder)  # never follows symlinks inside it (fd-based on Linux)
            except OSError as exc:
                what = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
                raise RegistryError(
                    f"could not delete the folder {folder} of run {rid} completely ({what}); "
                    "the run is still recorded"
                ) from None
            removed = folder
        with self._write() as s, s.begin():
            # explicit deletes: the same on every backend, whatever its foreign-key settings
            for model in (Metric, Artifact, Component):
                s.execute(delete(model).where(model.run_id == rid))
            s.execute(delete(Run).where(Run.id == rid))
        return removed

    # ------------------------------------------------------------------- metrics

    @_db_errors
    def log_metrics(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Append metric rows: ``{"stage","split","domain","name","k","value","step"}``.

        ``k`` and ``step`` may be left out (None).  NaN values are stored as NULL and
        come back as NaN.
        """
        clean = [_clean_metric(i, row) for i, row in enumerate(rows)]
        with self._write() as s, s.begin():
            rid = self._resolve(s, run_id, prefix=False)
            if clean:
                s.execute(Metric.__table__.insert(), [{"run_id": rid, **row} for row in clean])

    @_db_errors
    def metrics(
        self,
        run_ids: str | Iterable[str],
        *,
        stage: str | None = None,
        split: str | None = None,
        domain: str | None = None,
        name: str | None = None,
        k: int | None = _ANY,
    ) -> list[dict[str, Any]]:
        """Metric rows (with ``run_id`` and row ``id``) of full run ids, filtered; in insertion order."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        out: list[dict[str, Any]] = []
        with self._read() as s:
            for i in range(0, len(ids), 500):
                q = select(Metric).where(Metric.run_id.in_(ids[i : i + 500]))
                for col, val in (("stage", stage), ("split", split), ("domain", domain), ("name", name)):
                    if val is not None:
                        q = q.where(getattr(Metric, col) == val)
                if k is not _ANY:
                    q = q.where(Metric.k.is_(None) if k is None else Metric.k == k)
                out += [{"run_id": m.run_id, "id": m.id, **_metric_dict(m)} for m in s.scalars(q.order_by(Metric.id))]
        return out

    # ----------------------------------------------------------------- artifacts

    @_db_errors
    def log_artifact(self, run_id: str, kind: str, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Record a file (or folder) a run produced, with its sha256 and size.

        The path is stored absolute.  It must lie inside the run's own folder, a folder
        named after the run id (``<runs root>/<id>``), symlinks resolved; a folder artifact
        may hold no symlink leading out of it.  Its runs root is then trusted by this handle
        (the engine may write runs elsewhere than :attr:`runs_root`).  A run has one artifact
        per kind: logging a kind again replaces the earlier record.
        """
        p = Path(path).expanduser().absolute()
        if not p.exists():
            raise RegistryError(f"artifact {kind!r}: {p} does not exist")
        run_id = self._exact(run_id)
        doing = f"record artifact {kind!r} of run {run_id}"
        _check_folder_id(run_id, doing)
        real = p.resolve()
        folder = next((parent for parent in real.parents if parent.name == run_id), None)
        if folder is None:
            raise RegistryError(
                f"refusing to {doing}: {p}{f' (which resolves to {real})' if real != p else ''} is not inside "
                f"the run's own folder (a folder named {run_id}, e.g. {self.runs_root / run_id})"
            )
        _check_links(real, folder, f"refusing to {doing}")
        digest, size = file_digest(p)
        with self._roots_lock:
            if folder.parent not in self._own_roots:
                self._own_roots.append(folder.parent)
        with self._write() as s, s.begin():
            rid = self._resolve(s, run_id, prefix=False)
            s.execute(delete(Artifact).where(Artifact.run_id == rid, Artifact.kind == kind))
            art = Artifact(run_id=rid, kind=kind, path=str(p), sha256=digest, bytes=size, created_at=_utcnow())
            s.add(art)
        return _artifact_dict(art)

    @_db_errors
    def artifact_path(self, run_id: str, kind: str, verify: bool = True) -> Path:
        """The path of a run's artifact (id or unique prefix), checked against its sha256.

        The recorded path is refused unless it lies inside the run's own folder (symlinks
        resolved, see :meth:`run_folder`): a database row alone never makes the registry
        read a file.
        """
        with self._read() as s:
            rid = self._resolve(s, run_id)
            art = s.scalar(select(Artifact).where(Artifact.run_id == rid, Artifact.kind == kind))
            if art is None:
                kinds = list(s.scalars(select(Artifact.kind).where(Artifact.run_id == rid).order_by(Artifact.kind)))
                have = f"it has {', '.join(kinds)}" if kinds else "it has no artifacts"
                raise RegistryError(f"run {rid} has no artifact {kind!r} ({have})")
        doing = f"read artifact {kind!r} of run {rid}"
        folder = self._inside_run_folder(rid, kind, art.path, doing)
        p = Path(art.path)
        if not p.exists():
            raise RegistryError(f"artifact {kind!r} of run {rid} is missing: {p} does not exist any more")
        _check_links(p.resolve(), folder, f"refusing to {doing}")
        if verify:
            digest, size = file_digest(p)
            if digest != art.sha256:
                raise RegistryError(
                    f"artifact {kind!r} of run {rid} changed since it was recorded: {p} has sha256 {digest} "
                    f"({size} bytes), the registry has {art.sha256} ({art.bytes} bytes)"
                )
        return p

    # --------------------------------------------------------------------- track

    @contextlib.contextmanager
    def track(self, run_id: str) -> Iterator[str]:
        """Record how the block ends: interrupted (Ctrl-C; SIGTERM too, which the engine turns
        into :class:`~mtrec.errors.RunInterrupted` while a run goes on) or failed (exception).

        Signals are the engine's business (``mtrec.engine.sigterm_interrupts``), not the
        registry's: a run without a registry ends the same way.  A normal exit leaves the
        status alone (the engine sets ``finished`` itself).
        """
        run_id = self._exact(run_id)
        try:
            yield run_id
        except KeyboardInterrupt as exc:
            self._record_end(run_id, "interrupted", str(exc) or "interrupted (KeyboardInterrupt)")
            raise
        except SystemExit as exc:
            if exc.code not in (None, 0):
                self._record_end(run_id, "failed", f"SystemExit: {exc.code}")
            raise
        except GeneratorExit:
            raise
        except BaseException as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            self._record_end(run_id, "failed", text)
            raise

    def _record_end(self, run_id: str, status: str, error: str) -> None:
        try:
            self.set_status(run_id, status, error=error)
        except Exception as exc:  # never hide the original exception behind a registry failure
            import warnings

            warnings.warn(f"could not record run {run_id} as {status}: {exc}", RuntimeWarning, stacklevel=3)


def _locked(session: Session, run_id: str) -> Run:
    """The run row, locked until the transaction ends (``SELECT ... FOR UPDATE``).

    Callers read, change and write the row back: without the lock two PostgreSQL
    transactions read the same version and the second write drops the first one's change.
    SQLite has no row locks (the clause is left out); there the write transaction itself
    (BEGIN IMMEDIATE, see _make_engine) keeps writers apart.  ``populate_existing``: the
    row may already be in the session, read without the lock.
    """
    run = session.get(Run, run_id, with_for_update=True, populate_existing=True)
    if run is None:
        raise RegistryError(f"run {run_id!r} disappeared from the experiment registry")
    return run


def _check_folder_id(run_id: str, doing: str) -> None:
    # An id read from the database names a folder: one with '/' or '..' would lead elsewhere.
    if not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise RegistryError(f"refusing to {doing}: {run_id!r} is not a valid run id, so it names no run folder")


def _check_links(real: Path, folder: Path, refusal: str) -> None:
    """RegistryError when a symlink inside the (resolved) artifact ``real`` leads out of ``folder``.

    Whoever reads a folder artifact reads through its symlinks; deleting never follows them.
    """
    if not real.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(real):  # does not descend into linked folders
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            if entry.is_symlink():
                try:
                    target = entry.resolve()
                except RuntimeError:  # a symlink loop (Python < 3.13)
                    raise RegistryError(f"{refusal}: {entry} is a symbolic link loop") from None
                if not target.is_relative_to(folder):
                    raise RegistryError(f"{refusal}: {entry} is a symbolic link to {target}, outside the run's "
                                        f"folder {folder}")


def _folder_locked(folder: Path) -> bool:
    """Whether a live process holds the run folder's lock (the engine's ``run.lock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Unix
        return False
    try:
        fd = os.open(folder / "run.lock", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the lock if we got it
    return False


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has ended (False when unsure)."""
    if pid <= 0:  # 0 and negative ids mean process groups to kill(): never probe those
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: it exists, another user's
        return False
    # A killed process its parent has not reaped yet (a zombie) still answers kill(pid, 0).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[:1]
    except OSError:
        return False
    return state in (["Z"], ["X"])


def _is_stale(run: Run) -> bool:
    """A ``running`` run whose recorded process is gone from this very host."""
    return (
        run.status == "running"
        and run.pid is not None
        and run.host == socket.gethostname()
        and _process_gone(run.pid)
    )


def _clean_tags(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in tags:
        t = str(t).strip()
        if not t:
            raise RegistryError("empty tag")
        if t not in out:
            out.append(t)
    return out


def _clean_metric(i: int, row: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in _METRIC_REQUIRED if key not in row]
    unknown = set(row) - _METRIC_KEYS
    if missing or unknown:
        raise ValueError(
            f"metric row {i}: missing {missing or 'nothing'}, unknown keys {sorted(unknown) or 'none'}; "
            f"expected stage, split, domain, name, value and optional k, step"
        )
    value = float(row["value"])
    k, step = row.get("k"), row.get("step")
    return {
        "stage": str(row["stage"]),
        "split": str(row["split"]),
        "domain": str(row["domain"]),
        "name": str(row["name"]),
        "k": None if k is None else int(k),
        "value": None if math.isnan(value) else value,
        "step": None if step is None else int(step),
    }


def _run_dict(run: Run) -> dict[str, Any]:
    duration = None
    if run.started_at is not None and run.ended_at is not None:
        duration = round((run.ended_at - run.started_at).total_seconds(), 3)
    return {
        "id": run.id,
        "name": run.name,
        "recipe": run.recipe,
        "status": run.status,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "duration_s": duration,
        "host": run.host,
        "pid": run.pid,
        "stale": _is_stale(run),
        "device": run.device,
        "seed": run.seed,
        "config_hash": run.config_hash,
        "dataset_name": run.dataset_name,
        "dataset_fingerprint": run.dataset_fingerprint,
        "tags": list(run.tags or []),
        "error": run.error,
    }


def _metric_dict(m: Metric) -> dict[str, Any]:
    return {
        "stage": m.stage,
        "split": m.split,
        "domain": m.domain,
        "name": m.name,
        "k": m.k,
        "value": math.nan if m.value is None else m.value,
        "step": m.step,
    }


def _artifact_dict(a: Artifact) -> dict[str, Any]:
    return {"kind": a.kind, "path": a.path, "sha256": a.sha256, "bytes": a.bytes, "created_at": _iso(a.created_at)}


def open_registry(
    url: str | os.PathLike[str] | None = None, *, runs_root: str | os.PathLike[str] | None = None
) -> Registry:
    """Open (and create or upgrade to the current schema) the registry at ``url``.

    ``None`` means ``$MTREC_REGISTRY_URL``, else the SQLite file
    ``<data_dir()>/registry.db``.  Any SQLAlchemy URL works; ``postgresql+psycopg://``
    is the supported shared backend.  A plain path means a SQLite file.  ``runs_root`` is
    where run folders are on this machine (default ``<data_dir()>/runs``): the registry
    reads and deletes files only inside ``<runs_root>/<run id>``.
    """
    return Registry(resolve_url(url), runs_root=runs_root)
