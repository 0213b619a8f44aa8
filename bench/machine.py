"""What the benchmarks print about the machine they ran on."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; else what the platform module knows)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def run_context(load_before: tuple[float, float, float]) -> dict:
    """What a bench's summary says about where and when it ran: the CPU model and count, the
    load averages (1, 5, 15 min) before and after the measurements, and the UTC time."""
    return {
        "machine": cpu_model(), "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
