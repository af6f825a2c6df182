"""Settings for hypervisor: one module, driven by environment variables.

Production differs from development only by environment (see `.env.example`).
Unset `DATABASE_URL` means an embedded SQLite file; unset `REDIS_URL` means scheduling
passes run in-process after commit and the cache is local memory.
"""

import importlib.util
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local `.env` file (see `.env.example`) fills in what the real environment leaves unset.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "accounts",
    "orgs",
    "runtime",
    "clusters",
    "deployments",
    "scheduler",
    "web",
    "ops",
]
# Dev-only tools (benchmarks, load/fault/fuzz harnesses, scripts; docs/architecture.md):
# an app only for its `bench_*` management commands. It ships in checkouts, not in the
# image (.dockerignore), so by default it is installed wherever it exists.
DEVTOOLS = env.bool("DEVTOOLS", default=importlib.util.find_spec("devtools") is not None)
if DEVTOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    # First: the request id spans everything below, logs included.
    "ops.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "hypervisor.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "web.sessions.SlidingSessionMiddleware",
    "hypervisor.ratelimits.UnsafeRequestRateLimitMiddleware",
    "hypervisor.ratelimits.ExpensiveReadRateLimitMiddleware",
    # A refused sign-in on a page (admin, browsable API) is 429 with Retry-After.
    "hypervisor.ratelimits.RateLimitedMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hypervisor.urls"
WSGI_APPLICATION = "hypervisor.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# A lock wait longer than this is an error rather than a hang; the scheduler retries it.
DB_LOCK_TIMEOUT_MS = env.int("DB_LOCK_TIMEOUT_MS", default=10_000)

if env.str("DATABASE_URL", default=""):
    _db = env.db("DATABASE_URL")
    _db.setdefault("OPTIONS", {})
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["OPTIONS"]["options"] = f"-c lock_timeout={DB_LOCK_TIMEOUT_MS}"
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        # IMMEDIATE takes SQLite's write lock at BEGIN, so concurrent writers queue up
        # instead of failing half-way through a transaction.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
# Each concurrent test run (e.g. in a parallel checkout) may name its own test database.
_db["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=None)}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, rate limits and job queues ------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
USE_RQ = bool(REDIS_URL)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="hv"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The embedded default is one process: local memory is a correct counter store there.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

RQ_QUEUES = {
    "default": {
        "URL": REDIS_URL or "redis://127.0.0.1:6379/0",
        "DEFAULT_TIMEOUT": 300,
    },
}
RQ = {"DEFAULT_RESULT_TTL": 600}
# Seconds between the safety-net scheduling passes over every cluster.
SCHEDULER_SAFETY_NET_SECONDS = env.int("SCHEDULER_SAFETY_NET_SECONDS", default=30)
# At most one pass per cluster per this many ms (start to start): a job for a cluster with
# no recent pass runs at once, later ones are deferred to the window's end (the worker
# takes its next job meanwhile) and the changes meanwhile merge into one pass
# (docs/scheduling.md); 0 turns the window off.
SCHEDULER_MERGE_WINDOW_MS = env.int("SCHEDULER_MERGE_WINDOW_MS", default=500)
# How often rq's scheduler (`rqworker --with-scheduler`) moves due deferred passes to the
# queue: a deferred pass runs at most this much after its window ends.
SCHEDULER_POLL_MS = env.int("SCHEDULER_POLL_MS", default=50)
# A change decided without a pass over the whole queue (scheduler/incremental.py) leaves
# the other waiting deployments' reasons stale: a pass rewrites them this many seconds
# later, at most once per cluster per interval (0: not at all; docs/scheduling.md).
SCHEDULER_REASONS_SECONDS = env.float("SCHEDULER_REASONS_SECONDS", default=5)

# --- Bounds on the work one request or one member can cause (docs/operations.md) ------------
# Items in one deployment's `depends_on`, checked before the items themselves.
DEPLOYMENT_MAX_DEPENDENCIES = env.int("DEPLOYMENT_MAX_DEPENDENCIES", default=100)
# Waiting (pending or queued) deployments at once, per cluster and per organization.
DEPLOYMENT_MAX_WAITING_PER_CLUSTER = env.int("DEPLOYMENT_MAX_WAITING_PER_CLUSTER", default=1_000)
DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION = env.int(
    "DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION", default=5_000
)
# Longest chain of waiting deployments (each pending on the one before).
DEPENDENCY_MAX_DEPTH = env.int("DEPENDENCY_MAX_DEPTH", default=100)
# Deployments settled per transaction when a finished one's dependents are settled;
# a larger cascade continues in further transactions (docs/scheduling.md).
DEPENDENCY_CASCADE_BATCH = env.int("DEPENDENCY_CASCADE_BATCH", default=200)

# --- Rate limits (django-ratelimit rates: N/s, N/m, N/h, N/d) -------------------------------
# Runtimes (docs/runtimes.md). This installation's workload label; empty: a random id
# kept in the database.
HYPERVISOR_INSTALLATION_ID = env.str("HYPERVISOR_INSTALLATION_ID", default="")
# Calls to a runtime: tries per call, and the first backoff wait (doubling, with jitter).
RUNTIME_RETRY_ATTEMPTS = env.int("RUNTIME_RETRY_ATTEMPTS", default=3)
RUNTIME_RETRY_WAIT_SECONDS = env.float("RUNTIME_RETRY_WAIT_SECONDS", default=0.2)
# The circuit breaker per runtime: failed calls in a row that open it, seconds it stays open.
RUNTIME_BREAKER_FAIL_MAX = env.int("RUNTIME_BREAKER_FAIL_MAX", default=5)
RUNTIME_BREAKER_RESET_SECONDS = env.int("RUNTIME_BREAKER_RESET_SECONDS", default=30)
# A stop: the stop signal, then a kill after this many seconds.
RUNTIME_STOP_GRACE_SECONDS = env.float("RUNTIME_STOP_GRACE_SECONDS", default=10)
# While deployments run on a runtime, it is reconciled (exits noticed) this often; 0: only
# by the passes and the safety net.
RUNTIME_WATCH_SECONDS = env.float("RUNTIME_WATCH_SECONDS", default=2)

RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = env.str("RATELIMIT_IP_META_KEY", default="REMOTE_ADDR")
RATELIMIT_LOGIN_IP = env.str("RATELIMIT_LOGIN_IP", default="10/m")
RATELIMIT_LOGIN_USERNAME = env.str("RATELIMIT_LOGIN_USERNAME", default="5/m")
RATELIMIT_REGISTER_IP = env.str("RATELIMIT_REGISTER_IP", default="20/h")
RATELIMIT_JOIN_USER = env.str("RATELIMIT_JOIN_USER", default="10/m")
RATELIMIT_UNSAFE_USER = env.str("RATELIMIT_UNSAFE_USER", default="600/m")
# The expensive reads (queues, deployment lists, dashboards and their live parts) per user.
RATELIMIT_READ_USER = env.str("RATELIMIT_READ_USER", default="600/m")

# --- Auth, sessions, CSRF ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check (API, sign-in page, admin, browsable API) goes through this
# backend, which applies the login limits (`accounts.logins`).
AUTHENTICATION_BACKENDS = ["accounts.backends.RateLimitedModelBackend"]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=1800)
# A sliding session (web.sessions.SlidingSessionMiddleware): a signed-in person's every
# request, except the live pages' background refreshes, pushes the session's end to
# SESSION_COOKIE_AGE from now: it ends after that long idle, not that long after sign-in.
# The session is saved for that at most once per SESSION_SLIDE_SECONDS.
SESSION_SLIDE_SECONDS = env.int("SESSION_SLIDE_SECONDS", default=60)
CSRF_FAILURE_VIEW = "web.errors.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Secure by default when DEBUG is off: `check --deploy` is clean with nothing else set.
# Behind a proxy that terminates TLS, keep them on and set TRUST_X_FORWARDED_PROTO; turn
# SECURE_SSL_REDIRECT off only where plain HTTP is deliberate (docs/operations.md).
_SECURE_BY_DEFAULT = not DEBUG
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_SECURE_BY_DEFAULT)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_SECURE_BY_DEFAULT)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_SECURE_BY_DEFAULT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if not DEBUG else 0)
# `preload` in the header only allows a submission to the browsers' preload lists, which
# is a separate, deliberate step (and hard to undo).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_SECURE_BY_DEFAULT
)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=_SECURE_BY_DEFAULT)
# Sent with every answer that has none of its own (hypervisor.middleware); empty: none.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'",
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Probes answer over plain HTTP inside the deployment, whatever the public scheme.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalization, static files -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Times to the second with their zone, in the admin too (hypervisor/formats/en).
FORMAT_MODULE_PATH = ["hypervisor.formats"]
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it to exist
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # A Bearer token first (scripts: no session, no CSRF), else the session (browsers).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "hypervisor.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "hypervisor.pagination.PageNumberPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hypervisor.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["hypervisor.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "hypervisor API",
    "DESCRIPTION": (
        "Control plane for MLOps compute: organizations, clusters with fixed capacity, and "
        "deployments placed by a priority scheduler with preemption. Authenticate with a "
        "Django session (`POST /api/v1/auth/login`); every unsafe request carries "
        "`X-CSRFToken` with the value of the `csrftoken` cookie (this page sends it for "
        "you, also after signing in here). Scripts use an API token instead "
        "(`POST /api/v1/auth/tokens`): `Authorization: Bearer <token>`, no session and no "
        "CSRF header. The examples run as they are on the data of `manage.py demo` in a "
        "fresh database: sign in first with the login example."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Offline: the system's fonts (templates/drf_spectacular/redoc.html drops Google Fonts).
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
                "headings": {
                    "fontFamily": "system-ui, -apple-system, 'Segoe UI', Arial, sans-serif"
                },
                "code": {"fontFamily": "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"},
            }
        }
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "DeploymentStatusEnum": "deployments.models.Status",
        "RoleEnum": "orgs.models.Role",
        "DependencyConditionEnum": "deployments.models.Condition",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "csrfToken": {
                "type": "apiKey",
                "in": "header",
                "name": "X-CSRFToken",
                "description": "Value of the `csrftoken` cookie; required on unsafe methods.",
            }
        }
    },
    "SECURITY": [{"cookieAuth": [], "csrfToken": []}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # The 400/401/403/404/429 answers of API.md's general rules, on every operation.
        "hypervisor.openapi.add_error_responses",
    ],
}

# --- Operations: logs and metrics (docs/operations.md) -----------------------------------
# `/metrics` answers staff users, and `Authorization: Bearer <METRICS_TOKEN>` when set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# json: one JSON object per line with the request id (ops.logformat); text: for humans.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "ops.logformat.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
