"""The ``mtrec ui`` command: open the registry, bind the socket, serve the app with uvicorn.

Start-up problems (the extra not installed, the registry unreachable or missing, the port
taken) are one ``error: ...`` line and exit code 2, like every other mtrec command.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket

import click

from mtrec.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot serve on host {host!r}: {exc.strerror or exc}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        hint = "; pick another with --port (0 = any free port)" if port else ""
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _open_existing(url: str | None):
    """Open the registry; a SQLite file that does not exist is an error (the UI creates nothing)."""
    from mtrec.registry.store import Registry, _sqlite_file, normalize_url, resolve_url

    resolved = resolve_url(url)
    path = _sqlite_file(normalize_url(resolved))
    if path is not None and not path.is_file():
        raise UserError(
            f"no experiment registry at {path} (nothing has been recorded there yet; "
            "pass --registry URL or set MTREC_REGISTRY_URL)"
        )
    return Registry(resolved)


@click.command("ui")
@click.option("--registry", "registry_url", envvar="MTREC_REGISTRY_URL", metavar="URL",
              help="SQLAlchemy URL (or SQLite file) of the registry [default: $MTREC_REGISTRY_URL, else the "
                   "SQLite file shown by `mtrec runs where`].")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on (loopback by default; anything else exposes the registry to the network).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--stale-after", "stale_hours", default=24.0, show_default=True, type=click.FloatRange(min=0.01),
              metavar="HOURS", help="Mark a `running` run with no sign of life for this long as possibly stale.")
def ui(registry_url: str | None, host: str, port: int, stale_hours: float) -> None:
    """Browse the experiment registry in a web browser (read-only).

    \b
    Pages: all runs (filter by recipe, dataset, status, tag; sort; page), one run (config,
    components, test metrics, stages and learning curves, identifier quality, artifacts), and
    a comparison of 2-8 runs (metric bars, validation curves, config keys that differ).
        mtrec ui                          then open http://127.0.0.1:8765/
        mtrec ui --registry postgresql+psycopg://mtrec@db/mtrec --port 9000
    """
    try:
        import uvicorn

        from mtrec.registry.ui.app import create_app
    except ImportError as exc:
        raise UserError(f"mtrec ui needs the 'ui' extra ({exc.name or exc} is missing): "
                        "pip install 'mtrec[ui]'") from None
    registry = _open_existing(registry_url)
    try:
        registry.count_runs()  # fail now, not on the first page
        sock = _bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        app = create_app(registry, stale_after=dt.timedelta(hours=stale_hours))
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        click.echo(f"mtrec ui: serving {registry.url} (read-only) at http://{shown}:{bound_port}/", err=False)
        if not _is_loopback(host):
            click.echo(f"warning: listening on {host}, not on loopback: anyone who can reach this machine "
                       "can read the registry (runs, configs, file paths)", err=True)
        click.echo("press Ctrl-C to stop", err=True)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        registry.close()
