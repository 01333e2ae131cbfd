"""ChatDesk settings: the one place that reads the environment.

Every variable is documented in docs/configuration.md. With no variable set the
app runs on the embedded default: SQLite under DATA_DIR and the embedded Redis
server that `manage.py rundesk` starts on EMBEDDED_REDIS_PORT.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent


class ImproperlyConfiguredEnv(Exception):
    """A variable is set to a value the app cannot use."""


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    value = env(name, default)
    if value in ("True", "true", "1"):
        return True
    if value in ("False", "false", "0"):
        return False
    raise ImproperlyConfiguredEnv(f"{name} must be True or False, not {value!r}")


def envint(name: str, default: str) -> int:
    value = env(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name} must be a whole number, not {value!r}") from None


def envfloat(name: str, default: str) -> float:
    value = env(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name} must be a number, not {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "False")
DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var")))
SECRET_KEY = env("SECRET_KEY", "")
if not SECRET_KEY:
    if env("DATABASE_URL"):
        raise ImproperlyConfiguredEnv("SECRET_KEY must be set when DATABASE_URL is set (production)")
    # Embedded default: a key generated once per data folder, never committed.
    _key_file = DATA_DIR / "secret_key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        DATA_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(get_random_secret_key())
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# Sites allowed to embed the customer widget (websocket Origin check); the
# app's own ALLOWED_HOSTS are always allowed.
WIDGET_ALLOWED_ORIGINS = envlist("WIDGET_ALLOWED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "chatdesk.knowledge",
    "chatdesk.conversations",
    "chatdesk.reports",
    "agents",
    "chatdesk.accounts",  # after django.contrib.auth: replaces its user and group admin
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chatdesk.content_security.DeskCSPMiddleware",  # outermost but one: error pages get the header too
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy on every response (django-csp 4): scripts only from this host's files, never inline.
# Styles may be inline: the widget puts its stylesheet into its own shadow root. connect-src also gets this
# host's ws:// and wss:// URLs (chatdesk.content_security). Pages of other sites that embed the widget
# keep their own policy: it must allow script-src and connect-src (wss://) for this host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "chatdesk.urls"
ASGI_APPLICATION = "chatdesk.asgi.application"

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
                "chatdesk.conversations.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'chatdesk.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", "0"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE makes
    # writers queue for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

EMBEDDED_REDIS_PORT = envint("EMBEDDED_REDIS_PORT", "16379")
REDIS_URL = env("REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
EMBEDDED = not env("REDIS_URL")
# Every key this desk writes to Redis (channel layer and Celery broker) starts with this, so several
# desks or test runs can share one Redis server and database without taking each other's tasks.
REDIS_PREFIX = env("REDIS_PREFIX", "chatdesk")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # redis-py 8 reads with a 5 s timeout by default, which races the layer's own
                    # 5 s blocking pop and kills idle sockets with "Timeout reading".
                    "socket_timeout": 15,
                    # Drop dead pooled connections quickly after a Redis restart.
                    "health_check_interval": 1,
                    "retry": Retry(ExponentialBackoff(cap=1, base=0.05), 5),
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "prefix": REDIS_PREFIX,
            "capacity": 500,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {"chatdesk.conversations.tasks.draft_reply": {"queue": "drafts"}}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SOFT_TIME_LIMIT = envint("DRAFT_SOFT_TIME_LIMIT", "60")
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 10
# Late-acknowledged drafts are redelivered after visibility_timeout: it must outlast the longest draft.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
    "global_keyprefix": f"{REDIS_PREFIX}:",
}
CELERY_TASK_IGNORE_RESULT = True
# How often the topic selector is retrained on the approved history (0: never, only by command).
SELECTOR_TRAIN_EVERY_S = envint("SELECTOR_TRAIN_EVERY_S", "86400")
# Which sentence encoder the topic selector works on: "auto" fine-tunes a copy of the shared encoder
# on the labelled messages at each training and keeps it if it scores better on the held-back
# ones; "shared" never fine-tunes; "tuned" always uses the fine-tuned copy.
SELECTOR_ENCODER = env("SELECTOR_ENCODER", "auto")
if SELECTOR_ENCODER not in ("auto", "shared", "tuned"):
    raise ImproperlyConfiguredEnv(f"SELECTOR_ENCODER must be auto, shared or tuned, not {SELECTOR_ENCODER!r}")
# Fine-tuning stops after this long (it keeps what it learned) and is skipped below this many examples.
SELECTOR_TUNE_BUDGET_S = envfloat("SELECTOR_TUNE_BUDGET_S", "360")
SELECTOR_TUNE_MIN_EXAMPLES = envint("SELECTOR_TUNE_MIN_EXAMPLES", "200")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "requeue-stale-drafts": {"task": "chatdesk.conversations.tasks.requeue_stale_drafts", "schedule": 15.0},
}
if SELECTOR_TRAIN_EVERY_S > 0:
    CELERY_BEAT_SCHEDULE["train-selector"] = {
        "task": "chatdesk.knowledge.tasks.train_selector",
        "schedule": float(SELECTOR_TRAIN_EVERY_S),
    }

# Drafting
# Models load from local files only: there is no hub to download from at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Torch threads per worker process; one per process is fastest with prefork on few cores.
TORCH_NUM_THREADS = envint("TORCH_NUM_THREADS", "1")
DRAFT_ENGINE = env("DRAFT_ENGINE", "retrieval")
# Below this confidence a draft is still shown but the conversation is escalated.
DRAFT_ESCALATE_BELOW = envfloat("DRAFT_ESCALATE_BELOW", "0.45")
# Pending drafts older than this are queued again (the broker was down, a worker died).
DRAFT_REQUEUE_AFTER_S = envint("DRAFT_REQUEUE_AFTER_S", "30")
# Drafts that never finish within this are marked failed and escalated.
DRAFT_FAIL_AFTER_S = envint("DRAFT_FAIL_AFTER_S", "120")
DRAFT_HISTORY_TURNS = envint("DRAFT_HISTORY_TURNS", "12")

# Generative engines (DRAFT_ENGINE=transformers or openai); see docs/configuration.md.
DRAFT_MODEL = env("DRAFT_MODEL")
DRAFT_ADAPTER = env("DRAFT_ADAPTER")
DRAFT_DEVICE = env("DRAFT_DEVICE")
DRAFT_DTYPE = env("DRAFT_DTYPE", "auto")
DRAFT_MAX_NEW_TOKENS = envint("DRAFT_MAX_NEW_TOKENS", "256")
DRAFT_CONTEXT_TOKENS = envint("DRAFT_CONTEXT_TOKENS", "0")
DRAFT_DECODING = env("DRAFT_DECODING", "greedy")
DRAFT_TEMPERATURE = envfloat("DRAFT_TEMPERATURE", "0.7")
DRAFT_TOP_P = envfloat("DRAFT_TOP_P", "0.9")
DRAFT_NUM_BEAMS = envint("DRAFT_NUM_BEAMS", "4")
DRAFT_NUM_BEAM_GROUPS = envint("DRAFT_NUM_BEAM_GROUPS", "2")
DRAFT_DIVERSITY_PENALTY = envfloat("DRAFT_DIVERSITY_PENALTY", "0.5")
DRAFT_REPETITION_PENALTY = envfloat("DRAFT_REPETITION_PENALTY", "1.0")
DRAFT_NUM_ALTERNATIVES = envint("DRAFT_NUM_ALTERNATIVES", "2")
DRAFT_PASSAGES = envint("DRAFT_PASSAGES", "3")
DRAFT_BATCH_SIZE = envint("DRAFT_BATCH_SIZE", "16")
DRAFT_BATCH_WINDOW_MS = envint("DRAFT_BATCH_WINDOW_MS", "10")
DRAFT_BATCH_EXACT = envbool("DRAFT_BATCH_EXACT", "True")
DRAFT_CANCEL_POLL_MS = envint("DRAFT_CANCEL_POLL_MS", "100")
DRAFT_STREAM_INTERVAL_MS = envint("DRAFT_STREAM_INTERVAL_MS", "50")
DRAFT_PII_MASKING = env("DRAFT_PII_MASKING", "auto")
DRAFT_OPENAI_BASE_URL = env("DRAFT_OPENAI_BASE_URL")
DRAFT_OPENAI_MODEL = env("DRAFT_OPENAI_MODEL")
DRAFT_OPENAI_API_KEY = env("DRAFT_OPENAI_API_KEY")
DRAFT_OPENAI_TIMEOUT_S = envfloat("DRAFT_OPENAI_TIMEOUT_S", "30")
DRAFT_OPENAI_CONNECT_TIMEOUT_S = envfloat("DRAFT_OPENAI_CONNECT_TIMEOUT_S", "5")
DRAFT_OPENAI_RETRIES = envint("DRAFT_OPENAI_RETRIES", "2")
DRAFT_OPENAI_LOGPROBS = envbool("DRAFT_OPENAI_LOGPROBS", "False")

# Websocket limits. Frames larger than this (bytes of the UTF-8 payload, either direction) close the
# socket with 1009; the desk builds every frame it sends below it (replays and snapshots are paged).
WS_MAX_FRAME_BYTES = envint("WS_MAX_FRAME_BYTES", str(256 * 1024))

# Customer chat limits
CHAT_MAX_MESSAGE_CHARS = envint("CHAT_MAX_MESSAGE_CHARS", "4000")
CHAT_RATE_LIMIT_MESSAGES = envint("CHAT_RATE_LIMIT_MESSAGES", "5")
CHAT_RATE_LIMIT_WINDOW_S = envint("CHAT_RATE_LIMIT_WINDOW_S", "10")
CHAT_TOKEN_MAX_AGE_DAYS = envint("CHAT_TOKEN_MAX_AGE_DAYS", "30")
COMPANY_NAME = env("COMPANY_NAME", "Northwind Goods")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "agents:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Daphne serves /static/ itself unless a proxy in front does it (production).
SERVE_STATIC = envbool("SERVE_STATIC", "True")

# Every record goes through the root logger's one handler, whose filter masks e-mail addresses, card
# numbers, IBANs and phone numbers first; Django's own handlers (console when DEBUG, mail to ADMINS) are
# dropped so nothing bypasses it. Celery workers keep this configuration (CELERY_WORKER_HIJACK_ROOT_LOGGER).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_pii": {"()": "chatdesk.log_filters.MaskPersonalData"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_pii"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "django.channels.server": {"level": "WARNING"},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
