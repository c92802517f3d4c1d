"""Settings, all from the environment (README lists them)."""

import hashlib
import socket
import string
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from .env import env_bool, env_float, env_float_list, env_int, env_list, env_str, installation_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)
# Unset: a random key of this installation under var/ (never a published constant); several
# hosts behind one name must share a SECRET_KEY (README).
SECRET_KEY = env_str("SECRET_KEY", "") or installation_secret(VAR_DIR / "secret-key")
# Behind HTTPS: secure cookies, HSTS, redirects to https; behind a TLS-terminating proxy, its
# X-Forwarded-Proto says which requests came over HTTPS.
SECURE_HTTPS = env_bool("SECURE_HTTPS", False)
if SECURE_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    # The load balancer checks health over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# When set, /metrics answers only requests bearing this token (Authorization: Bearer ...).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the docs UI served from the installed package, not a CDN
    "django_celery_beat",
    "django_prometheus",
    "conferences",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "project.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "conferences.api.middleware.RefuseNulCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "project.urls"
# Room for an engine heartbeat listing 100,000 sessions; larger bodies answer 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
WSGI_APPLICATION = "project.wsgi.application"
APPEND_SLASH = False

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

DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/conference_plane")
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL; no other database is supported")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
# Lets the outbox's hot statements be prepared on the server (services/sql.py); Django's own
# client-side-bound queries never are. (Not for PgBouncer in transaction pooling mode.)
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# gunicorn serves the admin's and the API docs' files itself (WhiteNoise): from STATIC_ROOT after
# `collectstatic` (deploy/), else straight from the apps' folders.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # JSON lines with the request's id, app and actor (project/logs.py).
    "formatters": {"json": {"()": "project.logs.JsonLines"}},
    "filters": {"request": {"()": "project.logs.RequestContext"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: too much for webhook traffic.
    "loggers": {"django.db.backends": {"level": "INFO"}, "httpx": {"level": "WARNING"}},
}

# --- REST API -----------------------------------------------------------------------------
# Per app, counted in the shared cache by every process; failed authentication per address.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "100/second")
AUTH_FAILURE_RATE_LIMIT = env_str("AUTH_FAILURE_RATE_LIMIT", "30/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["conferences.api.auth.AppKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["conferences.api.auth.IsEnabledApp"],
    "DEFAULT_PARSER_CLASSES": ["conferences.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "conferences.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "conferences.api.schema.PageAwareAutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Conference control plane",
    "DESCRIPTION": "Audio conference rooms on a voice gateway: rooms, members, playback, "
    "and the webhooks that report what happens.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": ["pending", "delivered", "failed"],
        "StatusEnum": ["in_progress"],  # the name it had before deliveries had a status too
        "EventTypeEnum": "conferences.api.webhooks.EVENT_TYPES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conferences.api.schema.add_error_responses",
        "conferences.api.schema.forbid_nul_in_parameters",
        "conferences.api.schema.add_links",
    ],
    # One import string naming the whole list of webhook definitions.
    "WEBHOOKS": "conferences.api.schema.WEBHOOKS",
}

# --- Celery -------------------------------------------------------------------------------
# Without CELERY_BROKER_URL the broker is a folder on disk, so `make run` needs no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    BROKER_DIR = VAR_DIR / "broker"
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "folder://"  # project.broker
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),  # exchange bindings; not the working directory
        "store_processed": False,
        "polling_interval": 0.05,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 3

# The shared cache holds the rate limits' counters, so every process counts together: Redis
# (CACHE_URL, else a Redis broker's URL); without Redis, each process counts alone.
CACHE_URL = env_str("CACHE_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "conference-plane",
        # A request never waits long on the cache; conferences.ratelimit lets requests through meanwhile.
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Publishing must never hang a request: the outbox re-drive covers a broker that is down. A
# connection is tried twice without a pause between (kombu's default pause, 2 s, was what a
# request waited when it met a dead broker).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **globals().get("CELERY_BROKER_TRANSPORT_OPTIONS", {}),
    "max_retries": 1,
    "interval_start": 0,
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
}
# Workers and beat wait out a broker outage of any length (by default a worker gives up after
# 100 tries, about 50 minutes), and a worker started before its broker waits for it.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Requests publish with retry=False (conferences/publish.py): they never wait on a dead broker.
# Beat keeps one producer for its lifetime, and kombu reconnects a producer only inside this
# retry: without it, beat never publishes again after a RabbitMQ restart (celery#3409).
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# Webhook sending, engine commands and sweeps on their own queues, so one cannot starve
# another. All are declared: a worker without -Q consumes every one; -Q picks some.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", "webhooks", "engine", "sweeps")]
CELERY_TASK_ROUTES = {
    "conferences.tasks.dispatch_webhooks": {"queue": "webhooks"},
    "conferences.tasks.dispatch_engine_commands": {"queue": "engine"},
    "conferences.tasks.engine_command": {"queue": "engine"},
    "conferences.tasks.sim_report": {"queue": "engine"},
    "conferences.tasks.sim_playback_step": {"queue": "engine"},
    "conferences.tasks.*": {"queue": "sweeps"},
}


# --- The service --------------------------------------------------------------------------
def _default_node_hash() -> str:
    """Five base62 characters derived from the host name, stable across restarts."""
    alphabet = string.ascii_letters + string.digits
    number = int.from_bytes(hashlib.sha256(socket.gethostname().encode()).digest()[:8], "big")
    chars = []
    for _ in range(5):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


NODE_HASH = env_str("NODE_HASH", "") or _default_node_hash()
if len(NODE_HASH) != 5 or not all(c in string.ascii_letters + string.digits for c in NODE_HASH):
    raise ImproperlyConfigured("NODE_HASH must be 5 characters of [A-Za-z0-9]")

ENGINE = env_str("ENGINE", "sim")
ENGINE_URL = env_str("ENGINE_URL", "")
ENGINE_TOKEN = env_str("ENGINE_TOKEN", "")  # the ingress's bearer token
ENGINE_SECRET = env_str("ENGINE_SECRET", "")  # signs outbound commands (a different key)
if ENGINE == "http" and not (ENGINE_URL and ENGINE_SECRET):
    raise ImproperlyConfigured("ENGINE=http needs ENGINE_URL and ENGINE_SECRET (the key that signs commands)")
ENGINE_TIMEOUT_SECONDS = env_float("ENGINE_TIMEOUT_SECONDS", 2)
# Pauses between tries of a command the engine could not take (5xx, no answer); a join or a
# play gives up sooner when its own deadline comes first.
ENGINE_RETRY_SCHEDULE = env_float_list("ENGINE_RETRY_SCHEDULE", [0.2, 0.5, 1, 2, 4])
ENGINE_MAX_IN_FLIGHT = env_int("ENGINE_MAX_IN_FLIGHT", 16)  # commands in flight per worker process
ENGINE_COMMAND_RETENTION_DAYS = env_float("ENGINE_COMMAND_RETENTION_DAYS", 7)
MEDIA_ALLOW_PRIVATE = env_bool("MEDIA_ALLOW_PRIVATE", False)
PLAYBACK_TIMEOUT_SECONDS = env_float("PLAYBACK_TIMEOUT_SECONDS", 10)
JOIN_TIMEOUT_SECONDS = env_float("JOIN_TIMEOUT_SECONDS", 2)
ORPHAN_AFTER_SECONDS = env_float("ORPHAN_AFTER_SECONDS", 120)
SIM_JOIN_DELAY_MS = env_float("SIM_JOIN_DELAY_MS", 200)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_RETRY_SCHEDULE = env_float_list("WEBHOOK_RETRY_SCHEDULE", [5, 300, 1800, 7200, 18000, 36000, 36000])
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
# A webhook inbox at /dev/inbox (conferences/dev_inbox.py) for `make run`; the URL exists only
# when this is on.
DEV_INBOX = env_bool("DEV_INBOX", False)
# Attempts in flight per worker process: to one endpoint, and in all.
WEBHOOK_ENDPOINT_CONCURRENCY = env_int("WEBHOOK_ENDPOINT_CONCURRENCY", 32)
WEBHOOK_MAX_IN_FLIGHT = env_int("WEBHOOK_MAX_IN_FLIGHT", 1024)
WEBHOOK_ATTEMPT_RETENTION_DAYS = env_float("WEBHOOK_ATTEMPT_RETENTION_DAYS", 30)
AUDIT_RETENTION_DAYS = env_float("AUDIT_RETENTION_DAYS", 90)
# Events with their deliveries; ended rooms, sessions and members and finished playbacks.
EVENT_RETENTION_DAYS = env_float("EVENT_RETENTION_DAYS", 30)
ROOM_RETENTION_DAYS = env_float("ROOM_RETENTION_DAYS", 90)
# Per app (0: no limit); over them, 409 quota_exceeded.
QUOTA_LIVE_ROOMS = env_int("QUOTA_LIVE_ROOMS", 10_000, minimum=0)
QUOTA_ACTIVE_SESSIONS = env_int("QUOTA_ACTIVE_SESSIONS", 50_000, minimum=0)
