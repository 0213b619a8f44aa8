"""Django settings, all read from the environment.

With no environment at all EvalHub runs on the *embedded default*: SQLite and a filesystem
Celery broker under ``var/`` (see docs/deployment.md for the production variables).
"""

from __future__ import annotations

import os
from datetime import timedelta

from evalhub.config.env import (
    BASE_DIR,
    ImproperlyConfiguredEnv,
    env_address,
    env_bool,
    env_broker_url,
    env_cache_url,
    env_count,
    env_database,
    env_float,
    env_int,
    env_list,
    env_log_level,
    env_positive_int,
    env_rate,
    env_str,
    var_dir,
)
from evalhub.config.secret_key import embedded_secret_key
from evalhub.config.storage import media_delivery_from_env, storages_from_env
from evalhub.core.logging import logging_config

VAR_DIR = var_dir()
VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "staticfiles").mkdir(exist_ok=True)

# The embedded default (no DATABASE_URL: SQLite and a filesystem broker under VAR_DIR) is one
# configuration for `make run` and every later command in any shell: a secret key made once
# and kept in VAR_DIR/secret_key (mode 0600), local host names, and metric backbones with
# random weights (results marked uncalibrated) unless EVALHUB_RANDOM_WEIGHTS=0. A deployment
# (DATABASE_URL set) brings its own SECRET_KEY and ALLOWED_HOSTS, and DEBUG is off in both
# unless set.
EMBEDDED = not env_str("DATABASE_URL")
DEBUG = env_bool("DEBUG", default=False)

# A development key is tolerated only with DEBUG on; a deployment must bring its own.
_DEV_SECRET_KEY = "evalhub-insecure-development-key-do-not-deploy"
SECRET_KEY = (env_str("SECRET_KEY") or (embedded_secret_key(VAR_DIR) if EMBEDDED else None)
              or (_DEV_SECRET_KEY if DEBUG else None))
if not SECRET_KEY:
    raise ImproperlyConfiguredEnv(
        "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))') or DEBUG=1 for development."
    )
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfiguredEnv(
        "SECRET_KEY is the development key; refusing to start with DEBUG off."
    )

_LOCAL_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", _LOCAL_HOSTS if DEBUG or EMBEDDED else [])
if not ALLOWED_HOSTS and not DEBUG:
    # Django would start, then answer 400 to every page (the probes excepted).
    raise ImproperlyConfiguredEnv(
        "ALLOWED_HOSTS is not set and DEBUG is off: set it to the host names browsers use, "
        "comma-separated (e.g. ALLOWED_HOSTS=evalhub.example.org).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "csp",
    "axes",
    "evalhub.core",
    "evalhub.blobs",
    "evalhub.projects",
    "evalhub.prompts",
    "evalhub.runs",
    "evalhub.generation",
    "evalhub.campaigns",
    "evalhub.evaluation",
    "evalhub.leaderboards",
    "evalhub.exports",
]

MIDDLEWARE = [
    # First: every later log line carries the request id, and the latency counts everything.
    "evalhub.core.logging.RequestIdMiddleware",
    "evalhub.core.metrics.MetricsMiddleware",
    # /healthz, /readyz, /metrics: before the Host check and the HTTPS redirect (probes come
    # from inside, by address, over HTTP; evalhub/core/probes.py).
    "evalhub.core.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # django-csp's, the header built once (evalhub/core/security.py).
    "evalhub.core.security.CSPMiddleware",
    "evalhub.core.security.PrivateCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, carrying sessions signed in through Django's ModelBackend over to ours.
    "evalhub.core.authentication.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it turns a sign-in refused by the lockout into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "evalhub.config.urls"
WSGI_APPLICATION = "evalhub.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "evalhub.core.context_processors.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL, default SQLite under var/. SQLite gets WAL and IMMEDIATE transactions
# because the web process and the worker process write to the same file.
DATABASES = {
    "default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'evalhub.sqlite3'}",
                            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0)),
}
# A connection kept between requests (DATABASE_CONN_MAX_AGE > 0) that the server has dropped
# meanwhile (pg_terminate_backend, a PostgreSQL restart, a failover) answered the next request
# with a 500 (a page) or a 503 (the API), once per process and stale connection. With health
# checks Django tries a kept connection (one `SELECT 1`, at the first query of a request) and
# opens a new one if it is dead; with CONN_MAX_AGE 0 there is nothing to check and no cost.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: the serving query reads a few rows (LIMIT 1 over the serving index) but is costed
    # as a walk of the whole index, past jit_above_cost; compiling it on every lease cost 20-30
    # ms of CPU instead of well under 1 ms. No query of EvalHub gains from JIT.
    # join_collapse_limit=1: the planner keeps the join order the ORM writes (the base table,
    # then its foreign keys). The serving query joins about ten relations (its payload and
    # the NOT EXISTS probes): searching every join order cost 10-20 ms of planning per lease
    # for a plan that runs in 1 ms; in the written order, 2-3 ms (EXPLAIN ANALYZE).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        "-c jit=off -c join_collapse_limit=1")
    # Server-side binding lets psycopg prepare a statement the connection has run twice: the
    # rating path's SQL text never changes, so it is planned once per connection instead of on
    # every vote (PostgreSQL CPU per vote about 7.5 -> 3.5 ms). Off behind a pooler in
    # transaction mode, which cannot keep a connection's prepared statements.
    #
    # plan_cache_mode=force_generic_plan: a prepared statement keeps one plan for any values.
    # In the default mode PostgreSQL plans the first five executions for their values and
    # again after every invalidation, which every VACUUM or ANALYZE of a table it reads sends
    # (autovacuum's, every few seconds on the task and lease tables under a stream of votes):
    # bench/votes.py, paced at 150 votes/s with its vacuum every 10 s, measured 2.42-2.58 ms
    # of PostgreSQL CPU per vote in the default mode against 1.69 with generic plans (and 1.68
    # with no vacuum at all). The statements prepared are the ORM's, whose filters are keys
    # with indexes, where one plan serves every value; the rating path's plans are checked in
    # their generic form (tests/campaigns/test_rating_queries.py).
    if env_bool("EVALHUB_PG_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=2)
        DATABASES["default"]["OPTIONS"]["options"] += " -c plan_cache_mode=force_generic_plan"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

MEDIA_ROOT = env_str("MEDIA_ROOT") or str(VAR_DIR / "media")
MEDIA_URL = env_str("MEDIA_URL") or "/media/"
STORAGES = storages_from_env(MEDIA_ROOT)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# Where signing out lands when no safe ``next`` is given (without it, Django's LogoutView sends
# the browser back to the logout URL itself, which answers only POST).
LOGOUT_REDIRECT_URL = LOGIN_URL

# Web security (docs/security.md). Content-Security-Policy: every script and style is a file
# served from this origin (plotly's stylesheet too: static/css/plotly.css); data in pages is
# JSON in <script type="application/json">, which is not script. Images and tiles may also
# come from the media origins (object storage) named in EVALHUB_MEDIA_ORIGINS.
_MEDIA_ORIGINS = env_list("EVALHUB_MEDIA_ORIGINS", [])
# The only inline styles allowed are these exact texts, which the vendored libraries insert
# (a hash admits its one text and nothing else; tests/browser/test_csp.py sees them applied).
_LIBRARY_STYLE_ELEMENTS = [
    # OpenSeadragon 6.1.1: "@media (hover: none) { .openseadragon-canvas:focus {...} }"
    "'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='",
]
_LIBRARY_STYLE_ATTRIBUTES = [
    "'unsafe-hashes'",
    # plotly.js: style="" on colour-bar fills
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    # plotly.js: its "image-rendering: optimizeSpeed; ..." test for pixelated heatmaps
    "'sha256-AR/cKIZjWPcPmBUPDA6oti9XBiTbJvz0Cro2J1VzzS8='",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-elem": ["'self'", *_LIBRARY_STYLE_ELEMENTS],
        "style-src-attr": _LIBRARY_STYLE_ATTRIBUTES,
        "img-src": ["'self'", "data:", "blob:", *_MEDIA_ORIGINS],
        "connect-src": ["'self'", *_MEDIA_ORIGINS],
        # The rating page's <video> renditions: from a bucket too, in the signed delivery mode.
        "media-src": ["'self'", *_MEDIA_ORIGINS],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# One switch for a deployment served over HTTPS: redirect HTTP, HSTS, cookies only over TLS.
# Behind EVALHUB_PROXY_COUNT reverse proxies, the proxy's X-Forwarded-Proto says the scheme.
EVALHUB_HTTPS = env_bool("EVALHUB_HTTPS", default=False)
EVALHUB_PROXY_COUNT = env_count("EVALHUB_PROXY_COUNT", 0)
if EVALHUB_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("EVALHUB_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("EVALHUB_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env_bool("EVALHUB_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if EVALHUB_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Subdomains and preloading are decisions about the whole domain, which EvalHub may not
    # own: off unless asked for, and then check --deploy need not remind us of them.
    SILENCED_SYSTEM_CHECKS = [
        *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
        *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
    ]

# Sign-in limits by django-axes: after EVALHUB_LOGIN_FAILURE_LIMIT failures for one username,
# or from one address, every attempt for it (even with the right password) is refused with
# 429 until EVALHUB_LOGIN_COOLOFF_SECONDS pass without another failure. Covers the login
# page, the admin's and the API token endpoint (all go through authenticate()).
# Then Django's ModelBackend with the session's user read by one compiled query
# (evalhub/core/authentication.py); sessions that name Django's class are carried over.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "evalhub.core.authentication.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("EVALHUB_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("EVALHUB_LOGIN_COOLOFF_SECONDS", 15 * 60))
AXES_CLIENT_IP_CALLABLE = "evalhub.core.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "evalhub.core.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "evalhub.core.pagination.StandardPagination",
    # Id filters that never look an id up in the whole table (evalhub/core/filters.py): an
    # answer must not tell another project's object from an unused id.
    "DEFAULT_FILTER_BACKENDS": [
        "evalhub.core.filters.IdFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "evalhub.core.schema.EvalHubAutoSchema",
    "EXCEPTION_HANDLER": "evalhub.core.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "evalhub.core.api_errors.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Only views that name a throttle_scope are throttled (the rating endpoints: votes and
    # leases per annotator). The counts live in the default cache: CACHE_URL in production,
    # where DRF's class is counted in one round trip (evalhub/core/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["evalhub.core.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"rating": env_rate("EVALHUB_RATING_THROTTLE", "60/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EvalHub API",
    "DESCRIPTION": "Runs, metrics, human ratings and leaderboards for generative image models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema names every endpoint and field: for signed-in users, like the API itself.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Request bodies get their own components, without the read-only fields (id, status,
    # created_at, ...), which a shared component would list as required in requests too.
    "COMPONENT_SPLIT_REQUEST": True,
}

# Cache: one per process (local memory) in the embedded default; CACHE_URL (redis://...) gives
# every web process the same one, which the rating throttle needs to count an annotator's
# requests whichever process answers them.
CACHE_URL = env_cache_url("CACHE_URL")
CACHES = {
    "default": {"BACKEND": "evalhub.core.cache.RedisCache", "LOCATION": CACHE_URL,
                "KEY_PREFIX": "evalhub"} if CACHE_URL else
    {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
# Sessions read from a shared cache and written through to the table: one query fewer per
# request. Only with a shared cache: with one cache per process, a session ended in one process
# (sign-out) would live on in another's cache.
if CACHE_URL:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Celery. Default: a filesystem broker that needs no server, consumed by a real worker process.
# (The host means nothing to the filesystem transport; without one kombu logs "No hostname was
# supplied" at every start of a worker or a client.)
CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL", "filesystem://localhost/")
# Redelivery after a worker dies is what makes long gpu tasks resumable; the visibility timeout
# must exceed the longest task or Redis hands the message to a second worker mid-run.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7 * 3600),
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(_broker_dir / "queue"),
        data_folder_out=str(_broker_dir / "queue"),
        processed_folder=str(_broker_dir / "processed"),
        control_folder=str(_broker_dir / "control"),
        store_processed=False,
        # kombu polls the folder and sleeps 1 s whenever it is empty: each step of a task
        # chain (import -> displays -> tiles, generation -> metrics) waited 0.5 s on average,
        # idle (73 s of the embedded demo's 227 s). A listdir every 0.1 s costs next to nothing.
        polling_interval=0.1,
    )
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "evalhub.generation.*": {"queue": "gpu"},
    "evalhub.evaluation.*": {"queue": "gpu"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600 - 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Lost task messages (evalhub/core/recovery.py): a run, metric job or campaign build with no
# progress for EVALHUB_STALLED_AFTER_SECONDS, nothing waiting in its queue and nothing in a
# worker's hands is queued again by a sweep that Celery beat runs every
# EVALHUB_STALL_SWEEP_SECONDS (docker compose's `beat` service; 0 turns the schedule off).
EVALHUB_STALLED_AFTER_SECONDS = env_positive_int("EVALHUB_STALLED_AFTER_SECONDS", 600)
EVALHUB_STALL_SWEEP_SECONDS = env_int("EVALHUB_STALL_SWEEP_SECONDS", 300)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # A sweep not run before the next is due is dropped (workers down): they never pile up.
    "resume-stalled-work": {"task": "evalhub.core.resume_stalled_work",
                            "schedule": float(EVALHUB_STALL_SWEEP_SECONDS),
                            "options": {"expires": float(EVALHUB_STALL_SWEEP_SECONDS)}},
} if EVALHUB_STALL_SWEEP_SECONDS > 0 else {}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Import limits: what an image import accepts (bad input is refused before anything is stored).
EVALHUB_MAX_IMAGE_PIXELS = env_int("EVALHUB_MAX_IMAGE_PIXELS", 16384 * 16384)
EVALHUB_MAX_IMAGE_BYTES = env_int("EVALHUB_MAX_IMAGE_BYTES", 256 * 1024 * 1024)
EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES = env_int(
    "EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES", 20 * 1024 * 1024 * 1024
)
# What a video import accepts (blobs/video_validation.py): checked from the header before
# decoding and again while decoding (a header may lie).
EVALHUB_MAX_VIDEO_BYTES = env_int("EVALHUB_MAX_VIDEO_BYTES", 512 * 1024 * 1024)
EVALHUB_MAX_VIDEO_SECONDS = env_int("EVALHUB_MAX_VIDEO_SECONDS", 60)
EVALHUB_MAX_VIDEO_FRAMES = env_int("EVALHUB_MAX_VIDEO_FRAMES", 3600)
EVALHUB_MAX_VIDEO_PIXELS = env_int("EVALHUB_MAX_VIDEO_PIXELS", 3840 * 2160)
EVALHUB_RANDOM_WEIGHTS = env_bool("EVALHUB_RANDOM_WEIGHTS", default=EMBEDDED)
# The metrics package (no Django) reads the variable itself (metrics/weights.py); the embedded
# default's value reaches it, and the worker processes this one starts, through the environment.
os.environ["EVALHUB_RANDOM_WEIGHTS"] = "1" if EVALHUB_RANDOM_WEIGHTS else "0"

# Operations (docs/operations.md). Logs: plain text, or one JSON object per line with the
# request id / task id (EVALHUB_LOG_JSON=1; workers read the same variable in celery.py).
EVALHUB_LOG_JSON = env_bool("EVALHUB_LOG_JSON", default=False)
LOGGING = logging_config(json_lines=EVALHUB_LOG_JSON, level=env_log_level("LOG_LEVEL", "INFO"))
# /readyz: broker and worker-reply timeout, queues needing a worker (unset: every routed
# queue; empty: none), free-space floor under MEDIA_ROOT, how long one result is reused.
EVALHUB_READYZ_TIMEOUT_MS = env_positive_int("EVALHUB_READYZ_TIMEOUT_MS", 1000)
EVALHUB_READYZ_QUEUES: list[str] | None = None
if env_str("EVALHUB_READYZ_QUEUES") is not None:
    EVALHUB_READYZ_QUEUES = env_list("EVALHUB_READYZ_QUEUES", [])
EVALHUB_READYZ_MIN_FREE_MB = env_int("EVALHUB_READYZ_MIN_FREE_MB", 1024)
EVALHUB_READYZ_CACHE_SECONDS = env_int("EVALHUB_READYZ_CACHE_SECONDS", 5)
# /metrics: a bearer token; unset, only direct connections from this host are answered.
# A worker serves its own task metrics at EVALHUB_WORKER_METRICS_ADDR (host:port) when set.
EVALHUB_METRICS_TOKEN = env_str("EVALHUB_METRICS_TOKEN", "")
_worker_metrics = env_address("EVALHUB_WORKER_METRICS_ADDR")
EVALHUB_WORKER_METRICS_ADDR = "" if _worker_metrics is None else "{}:{}".format(*_worker_metrics)

# Media go through one access-checked view (evalhub/blobs/views.py); how it hands over the
# bytes: stream | accel (nginx X-Accel-Redirect) | signed (S3 URL), see config/storage.py.
_MEDIA_DELIVERY = media_delivery_from_env()
EVALHUB_MEDIA_DELIVERY = _MEDIA_DELIVERY.mode
EVALHUB_MEDIA_ACCEL_PREFIX = _MEDIA_DELIVERY.accel_prefix
EVALHUB_MEDIA_SIGNED_URL_SECONDS = _MEDIA_DELIVERY.signed_url_seconds
EVALHUB_MAX_REFERENCE_IMAGES = env_int("EVALHUB_MAX_REFERENCE_IMAGES", 500_000)
# (prompt, seed) items one generated run may plan (runs/services.py run_items_check), so that a
# slip such as 100,000 seeds on a 51-prompt set is refused, not 5.1 million images queued.
EVALHUB_MAX_RUN_ITEMS = env_int("EVALHUB_MAX_RUN_ITEMS", 100_000)

# Generation: extra generator plugins by dotted path, items per gpu task, device override.
EVALHUB_GENERATORS = env_list("EVALHUB_GENERATORS", [])
EVALHUB_GENERATION_BATCH_ITEMS = env_int("EVALHUB_GENERATION_BATCH_ITEMS", 16)
EVALHUB_GENERATION_DEVICE = env_str("EVALHUB_GENERATION_DEVICE", "")
# Offline: the diffusers generator (generators/diffusers_gen.py, no Django) reads the variable
# itself; checked here so that a value it would read as off ("maybe") refuses to start.
EVALHUB_OFFLINE = env_bool("EVALHUB_OFFLINE", default=False)

# Leaderboards: bootstrap rounds for confidence intervals; at most one refresh per campaign
# every this many seconds after votes arrive.
EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS = env_int("EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS", 1000)
EVALHUB_LEADERBOARD_REFRESH_SECONDS = env_int("EVALHUB_LEADERBOARD_REFRESH_SECONDS", 30)

# Quality control: a vote faster than this (server clock, from when its pair could first be on
# screen: evalhub/campaigns/quality/timing.py) is implausible for a person comparing two
# images; an annotator with at least MIN_VOTES votes and this SHARE of
# them under the floor is flagged "fast" (evalhub/campaigns/quality/annotators.py).
EVALHUB_FAST_VOTE_FLOOR_MS = env_int("EVALHUB_FAST_VOTE_FLOOR_MS", 700)
EVALHUB_FAST_VOTE_MIN_VOTES = env_int("EVALHUB_FAST_VOTE_MIN_VOTES", 10)
EVALHUB_FAST_VOTE_SHARE = env_float("EVALHUB_FAST_VOTE_SHARE", 0.2)
# The rating page ignores a vote or skip this soon after a task is drawn: a second press meant
# for the task before (the next one is drawn within a frame of a vote), not a judgment of
# this one. 0 turns it off (scripted clients, the rating page's latency bench).
EVALHUB_RATE_INPUT_GUARD_MS = env_int("EVALHUB_RATE_INPUT_GUARD_MS", 150)

# Who may create projects: "staff" (staff users and users given projects.add_project) or
# "anyone" (every signed-in user). See evalhub/projects/services.py.
EVALHUB_PROJECT_CREATORS = env_str("EVALHUB_PROJECT_CREATORS") or "staff"
if EVALHUB_PROJECT_CREATORS not in ("staff", "anyone"):
    raise ImproperlyConfiguredEnv(
        f"EVALHUB_PROJECT_CREATORS={EVALHUB_PROJECT_CREATORS!r} is not who may create "
        "projects: use 'staff' or 'anyone'")

