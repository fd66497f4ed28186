"""Peak memory of one stretch of work (a training stage, a benchmark step).

CPU: the process's peak resident set size (``VmHWM``), reset at the start of the stretch by
writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0); where that is not possible the
figure is the peak since the process started (``ru_maxrss``) and ``rss_reset`` says so.
CUDA: ``torch.cuda.max_memory_allocated`` since ``reset_peak_memory_stats``.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.rss_mb`` / ``peak.gpu_mb``."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.rss_mb: float = float("nan")
        self.gpu_mb: float | None = None
        self.rss_reset = False

    def __enter__(self) -> "PeakMemory":
        try:
            Path("/proc/self/clear_refs").write_text("5")
            # Some kernels and sandboxes accept the write but keep the old peak: check it took.
            status = _status_kib()
            self.rss_reset = status.get("VmHWM", 0) <= status.get("VmRSS", 0) + 1024
        except OSError:
            self.rss_reset = False
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        self.rss_mb = peak_rss_mb()
        if self.device is not None and self.device.type == "cuda":
            self.gpu_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


def _status_kib() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def peak_rss_mb() -> float:
    """The process's peak resident set size in MiB (since start or the last reset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
