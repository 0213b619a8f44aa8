"""gunicorn settings for EvalHub's web processes.

One file for every way the web server starts (Dockerfile, docker-compose.yml, `make run`,
bench/votes.py), so that what the vote benchmark measures is what is deployed. Command-line
flags and ``GUNICORN_CMD_ARGS`` override any setting here.

    gunicorn -c evalhub/config/gunicorn.conf.py
"""

from __future__ import annotations

import gc
import os
import re
import sys

wsgi_app = "evalhub.config.wsgi"
bind = os.environ.get("EVALHUB_BIND", "0.0.0.0:8000")

try:
    # The import runs the evalhub package's __init__ (Celery's app), which reads settings of
    # its own: it may refuse one too.
    from evalhub.config.env import env_bool, env_positive_int

    # Threads keep the annotators' connections alive between votes; several processes keep
    # one slow request (or one process's pause) from holding up everyone.
    workers = env_positive_int("WEB_CONCURRENCY", 4)
    threads = env_positive_int("WEB_THREADS", 4)
    json_logs = env_bool("EVALHUB_LOG_JSON", default=False)
except Exception as exc:
    # gunicorn prints a traceback for any error in this file: the settings' one line instead.
    # (The class is looked up because a failed package import cannot be imported from.)
    refused = getattr(sys.modules.get("evalhub.config.env"), "ImproperlyConfiguredEnv", ())
    if not isinstance(exc, refused):
        raise
    sys.stderr.write(f"EvalHub configuration error: {exc}\n")
    raise SystemExit(1) from None
worker_class = "gthread"
keepalive = 30

# Load Django once in the master, so workers fork warm and share its memory.
preload_app = True

# With EVALHUB_LOG_JSON=1 gunicorn's own lines (start, workers booted and exiting, timeouts,
# access lines) are JSON like every other line (docs/operations.md, "Logs"). Access lines go to
# stdout as before; setting this also turns them on, which is what a JSON deployment wants.
if json_logs:
    logconfig_dict = {
        "root": {"level": "INFO", "handlers": []},
        "formatters": {"json": {"()": "evalhub.core.logging.JsonFormatter"}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json",
                       "stream": "ext://sys.stdout"},
            "stderr": {"class": "logging.StreamHandler", "formatter": "json",
                       "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }


def pre_fork(server, worker) -> None:
    """Move everything the preloaded app allocated into the GC's permanent generation.

    A worker's full (generation 2) collection otherwise walks every object Django, DRF and
    their imports created at startup: measured at 180-300 ms per collection, during which all
    of that worker's threads stand still, the largest cause of the vote endpoint's p99 latency.
    Frozen, a full collection only walks what the worker allocated itself (3-25 ms).
    """
    gc.freeze()


def on_starting(server) -> None:
    """Give this server its own control socket (``gunicornc``), named after what it binds.

    gunicorn's default is one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl), so
    a second server on the host (two `make run` checkouts, the bench beside a server) took over
    the first one's socket. A path set explicitly (``--control-socket``) is kept.
    """
    from gunicorn.config import ControlSocket

    if server.cfg.control_socket != ControlSocket.default:
        return
    label = re.sub(r"[^A-Za-z0-9]+", "-", "_".join(server.cfg.bind)).strip("-")
    folder = os.path.dirname(ControlSocket.default)
    server.cfg.set("control_socket", os.path.join(folder, f"evalhub-{label}.ctl"))
