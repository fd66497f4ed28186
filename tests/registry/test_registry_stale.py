"""A run whose process was killed with SIGKILL stays ``running``: list and show call it stale.

The killed run is a real process that records a run and then sends itself SIGKILL (nothing of
the registry's runs after that), exactly what ``kill -9`` or the out-of-memory killer leaves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from click.testing import CliRunner

from mtrec.registry.cli import runs

_KILLED = """
import os, signal, sys
from mtrec.registry import open_registry
reg = open_registry(sys.argv[1])
rid = reg.start_run(name="doomed", recipe="gmc", config={}, config_hash="h", seed=0, device="cpu",
                    dataset_name="tiny", dataset_spec={}, dataset_fingerprint="f", components=[])
print(rid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_run(registry_url: str, *, reap: bool = True) -> tuple[str, subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, registry_url], stdout=subprocess.PIPE, text=True)
    rid = proc.stdout.readline().strip()
    assert rid, "the child recorded no run"
    if reap:
        assert proc.wait(timeout=60) == -signal.SIGKILL
    return rid, proc


def _list(registry_url: str, *args: str):
    return CliRunner().invoke(runs, ["list", *args, "--registry", registry_url])


def test_killed_run_is_shown_stale_and_resumes(reg, registry_url):
    rid, proc = _killed_run(registry_url)
    run = reg.get_run(rid)
    assert run["status"] == "running" and run["stale"] is True
    assert run["pid"] == proc.pid and run["host"] == socket.gethostname()

    out = _list(registry_url)
    assert out.exit_code == 0, out.output
    row = next(line for line in out.stdout.splitlines() if line.startswith(rid))
    assert row.split()[3] == "stale"  # id, created date, time, status
    assert "stale: recorded as running, but its process on this host is gone" in out.stdout
    assert "`mtrec run --resume ID`" in out.stdout
    data = json.loads(_list(registry_url, "--format", "json").stdout)
    assert data[0]["status"] == "running" and data[0]["stale"] is True  # the stored status is unchanged
    shown = CliRunner().invoke(runs, ["show", rid, "--registry", registry_url]).stdout
    assert f"running, but stale: its process (pid {proc.pid} on {socket.gethostname()}) is gone" in shown
    assert f"mtrec run --resume {rid}" in shown

    # --resume takes it over: its process is now this one, so it is no longer stale
    assert reg.resume_run(rid) == "interrupted"
    run = reg.get_run(rid)
    assert run["status"] == "running" and run["stale"] is False and run["pid"] == os.getpid()
    out = _list(registry_url)
    assert "stale" not in out.stdout
    assert next(line for line in out.stdout.splitlines() if line.startswith(rid)).split()[3] == "running"
    reg.set_status(rid, "finished")
    assert reg.get_run(rid)["stale"] is False


def test_killed_but_unreaped_process_is_stale(reg, registry_url):
    """A killed process whose parent has not waited for it yet (a zombie) still has its pid."""
    rid, proc = _killed_run(registry_url, reap=False)
    try:
        for _ in range(500):  # until the kernel has made it a zombie (poll() would reap it)
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    break
            time.sleep(0.01)
        os.kill(proc.pid, 0)  # the pid still answers...
        assert reg.get_run(rid)["stale"] is True  # ...but the run is stale
    finally:
        proc.wait(timeout=60)


def test_only_a_dead_process_of_this_host_makes_a_run_stale(reg, registry_url, start_kwargs):
    live = reg.start_run(**start_kwargs())  # this very process
    assert reg.get_run(live)["pid"] == os.getpid() and reg.get_run(live)["stale"] is False
    dead_rid, proc = _killed_run(registry_url)
    elsewhere = reg.start_run(**start_kwargs(host="another-machine"))  # its pid cannot be checked from here
    assert reg.get_run(elsewhere)["pid"] is None and reg.get_run(elsewhere)["stale"] is False
    told = reg.start_run(**start_kwargs(host="another-machine", pid=proc.pid))
    assert reg.get_run(told)["stale"] is False
    failed = reg.start_run(**start_kwargs(pid=proc.pid))
    assert reg.get_run(failed)["stale"] is True
    reg.set_status(failed, "failed", error="boom")  # only `running` runs are ever stale
    assert reg.get_run(failed)["stale"] is False
    for pid in (0, -1):  # never probe process groups (a crafted row)
        rid = reg.start_run(**start_kwargs(pid=pid))
        assert reg.get_run(rid)["stale"] is False
    stale = {r["id"] for r in reg.list_runs() if r["stale"]}
    assert stale == {dead_rid}
