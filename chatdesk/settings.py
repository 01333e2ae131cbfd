"""ChatDesk settings: the one place that reads the environment.

Every variable is documented in docs/configuration.md. With no variable set the
app runs on the embedded default: SQLite under DATA_DIR and the embedded Redis
server that `manage.py rundesk` starts on EMBEDDED_REDIS_PORT.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

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
    "django.contrib.humanize",  # intcomma: report counts grouped as the page's language does
    "channels",
    "csp",
    "chatdesk",  # the rundesk command
    "chatdesk.drafting",  # the finetune_generator command
    "chatdesk.knowledge",
    "chatdesk.conversations",
    "chatdesk.reports",
    "chatdesk.webhooks",
    "chatdesk.canned",
    "chatdesk.widget_sites",
    "agents",
    "ninja",  # the API's docs page from its own vendored Swagger UI files (no CDN)
    "chatdesk.api",
    "chatdesk.accounts",  # after django.contrib.auth: replaces its user and group admin
    "chatdesk.monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chatdesk.content_security.DeskCSPMiddleware",  # outermost but one: error pages get the header too
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common: the language from the cookie or Accept-Language (customers, sign-in page).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a signed-in person's own language and time zone (accounts.Profile) win.
    "chatdesk.accounts.middleware.UserPreferencesMiddleware",
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
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chatdesk.conversations.context_processors.roles",
                "chatdesk.webhooks.context_processors.webhook_notices",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'chatdesk.sqlite3'}")
# Connections are kept (each Daphne process does its database work on one thread: one connection) and
# checked before reuse; opening one per message cost the live path more than its queries.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", "60"), conn_health_checks=True
    )
}
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

# Shared by every process: the per-address rate limits (conversations/throttle.py).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

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
                    # Drop dead pooled connections quickly after a Redis restart. The layer's client is
                    # redis.asyncio's: a synchronous Retry there never retries (it wraps only the creation
                    # of the awaited call), so the first socket after a restart failed with 1011.
                    "health_check_interval": 1,
                    "retry": Retry(ExponentialBackoff(cap=1, base=0.05), 5),
                    "retry_on_error": [RedisConnectionError],
                    # No CLIENT SETINFO in the connection handshake: Redis before 7.2 refuses it, and
                    # under load a due health check reads that refusal mid-handshake and fails the
                    # socket's group_add (seen as internal_error on hello while another client flooded).
                    "driver_info": None,
                }
            ],
            "prefix": REDIS_PREFIX,
            # Events waiting per process inbox; above it, channels-redis drops new ones silently (clients
            # notice the seq gap and resync, docs/protocol.md).
            "capacity": envint("CHANNEL_CAPACITY", "500"),
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "chatdesk.conversations.tasks.draft_reply": {"queue": "drafts"},
    "chatdesk.conversations.tasks.handoff_summary_generate": {"queue": "drafts"},
    # Webhook deliveries wait on other sites' servers (up to WEBHOOK_TIMEOUT_S each): a queue of their own,
    # so a slow receiver holds up neither drafts nor the periodic sweeps (which expire when late).
    "chatdesk.webhooks.tasks.webhook_deliver": {"queue": "webhooks"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SOFT_TIME_LIMIT = envint("DRAFT_SOFT_TIME_LIMIT", "60")
# At the hard limit the pool kills the child; the gap lets a draft stopped at the soft limit be marked timed out.
CELERY_TASK_TIME_LIMIT = envint("DRAFT_HARD_TIME_LIMIT", str(CELERY_TASK_SOFT_TIME_LIMIT + 10))
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfiguredEnv("DRAFT_HARD_TIME_LIMIT must be greater than DRAFT_SOFT_TIME_LIMIT")
# A replacement pool child loads the drafting engine (torch, the encoder) before it reports for work;
# Celery's default of 4 s kills slow starters in a loop, and then nothing is drafted at all.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = envfloat("WORKER_PROC_ALIVE_TIMEOUT_S", "120")
# Late-acknowledged drafts are redelivered after visibility_timeout: it must outlast the longest draft.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
    "global_keyprefix": f"{REDIS_PREFIX}:",
}
CELERY_TASK_IGNORE_RESULT = True
# How often the topic classifier is retrained on the approved history (0: never, only by command).
CLASSIFIER_TRAIN_EVERY_S = envint("CLASSIFIER_TRAIN_EVERY_S", "86400")
# Which sentence encoder the topic classifier works on: "auto" fine-tunes a copy of the shared encoder
# on the labelled messages at each training and keeps it if it scores better on the held-back
# ones; "shared" never fine-tunes; "tuned" always uses the fine-tuned copy.
CLASSIFIER_ENCODER = env("CLASSIFIER_ENCODER", "auto")
if CLASSIFIER_ENCODER not in ("auto", "shared", "tuned"):
    raise ImproperlyConfiguredEnv(f"CLASSIFIER_ENCODER must be auto, shared or tuned, not {CLASSIFIER_ENCODER!r}")
# Fine-tuning stops after this long (it keeps what it learned) and is skipped below this many examples.
CLASSIFIER_TUNE_BUDGET_S = envfloat("CLASSIFIER_TUNE_BUDGET_S", "360")
CLASSIFIER_TUNE_MIN_EXAMPLES = envint("CLASSIFIER_TUNE_MIN_EXAMPLES", "200")
# /readyz: each dependency check's time limit (seconds); how recently a worker must have been seen; how
# often each worker says it is alive.
READY_CHECK_TIMEOUT_S = envfloat("READY_CHECK_TIMEOUT_S", "1")
READY_WORKER_SEEN_S = envint("READY_WORKER_SEEN_S", "60")
WORKER_HEARTBEAT_S = envfloat("WORKER_HEARTBEAT_S", "10")
# /metrics (Prometheus): off unless a token or allowed networks are set; either one lets a scraper in.
METRICS_TOKEN = env("METRICS_TOKEN")
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(net, strict=False) for net in envlist("METRICS_ALLOWED_NETWORKS")]
except ValueError as _error:
    raise ImproperlyConfiguredEnv(f"METRICS_ALLOWED_NETWORKS must be CIDR networks: {_error}") from None
# Every Daphne and Celery process of one desk writes its metrics to files in this folder, which /metrics adds
# up (prometheus_client reads the variable itself, at import). Empty it before the processes start;
# `rundesk` uses DATA_DIR/metrics and empties it. Unset: each process counts for itself alone.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# How often the beat sweep queues lost drafts again and fails hopeless ones (drafts_requeue_stale).
DRAFT_SWEEP_EVERY_S = envfloat("DRAFT_SWEEP_EVERY_S", "15")
# How often escalated conversations of agents gone offline (or waiting for one) are handed out again.
ASSIGN_SWEEP_EVERY_S = envint("ASSIGN_SWEEP_EVERY_S", "15")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "requeue-stale-drafts": {
        "task": "chatdesk.conversations.tasks.requeue_stale_drafts",
        "schedule": DRAFT_SWEEP_EVERY_S,
        # A sweep not run by the next one's time is dropped: sweeps never pile up behind busy workers.
        "options": {"expires": DRAFT_SWEEP_EVERY_S},
    },
    "assign-waiting": {
        "task": "chatdesk.conversations.tasks.assign_waiting",
        "schedule": float(ASSIGN_SWEEP_EVERY_S),
        "options": {"expires": float(ASSIGN_SWEEP_EVERY_S)},
    },
}
# Service levels: a customer waiting for any reply longer than SLA_CUSTOMER_WAIT_S, or a draft ready and
# undecided longer than SLA_DRAFT_REVIEW_S, is flagged sla_breach and announced to agents; the beat sweep
# checks every SLA_SWEEP_EVERY_S.
SLA_CUSTOMER_WAIT_S = envint("SLA_CUSTOMER_WAIT_S", "300")
SLA_DRAFT_REVIEW_S = envint("SLA_DRAFT_REVIEW_S", "120")
SLA_SWEEP_EVERY_S = envfloat("SLA_SWEEP_EVERY_S", "10")
if min(SLA_CUSTOMER_WAIT_S, SLA_DRAFT_REVIEW_S, SLA_SWEEP_EVERY_S) <= 0:
    raise ImproperlyConfiguredEnv("SLA_CUSTOMER_WAIT_S, SLA_DRAFT_REVIEW_S and SLA_SWEEP_EVERY_S must be above 0")
CELERY_BEAT_SCHEDULE["sla-sweep"] = {
    "task": "chatdesk.conversations.tasks.sla_sweep",
    "schedule": SLA_SWEEP_EVERY_S,
    "options": {"expires": SLA_SWEEP_EVERY_S},
}
# Webhooks (docs/webhooks.md): plain http:// endpoints only on this machine, and only when allowed
# (development); each attempt's time limit; attempts per delivery and the first retry's delay (doubling
# after each failure); failed attempts in a row that disable an endpoint; how often due retries are queued.
WEBHOOK_ALLOW_HTTP_LOOPBACK = envbool("WEBHOOK_ALLOW_HTTP_LOOPBACK", "False")
WEBHOOK_TIMEOUT_S = envfloat("WEBHOOK_TIMEOUT_S", "10")
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", "8")
WEBHOOK_RETRY_BASE_S = envfloat("WEBHOOK_RETRY_BASE_S", "30")
WEBHOOK_DISABLE_AFTER_FAILURES = envint("WEBHOOK_DISABLE_AFTER_FAILURES", "20")
WEBHOOK_SWEEP_EVERY_S = envfloat("WEBHOOK_SWEEP_EVERY_S", "5")
if min(WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_BASE_S, WEBHOOK_DISABLE_AFTER_FAILURES, WEBHOOK_SWEEP_EVERY_S) <= 0:
    raise ImproperlyConfiguredEnv(
        "WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_BASE_S, WEBHOOK_DISABLE_AFTER_FAILURES and WEBHOOK_SWEEP_EVERY_S "
        "must be above 0"
    )
if WEBHOOK_TIMEOUT_S <= 0:
    raise ImproperlyConfiguredEnv("WEBHOOK_TIMEOUT_S must be above 0")
# A delivery task's own limits (not the drafts' DRAFT_SOFT_TIME_LIMIT): connecting, sending and reading
# may each take up to WEBHOOK_TIMEOUT_S.
WEBHOOK_TASK_SOFT_TIME_LIMIT = 3 * WEBHOOK_TIMEOUT_S + 5
WEBHOOK_TASK_TIME_LIMIT = WEBHOOK_TASK_SOFT_TIME_LIMIT + 10
CELERY_BEAT_SCHEDULE["webhooks-requeue-due"] = {
    "task": "chatdesk.webhooks.tasks.webhooks_requeue_due",
    "schedule": WEBHOOK_SWEEP_EVERY_S,
    "options": {"expires": WEBHOOK_SWEEP_EVERY_S},
}
# Drafting workers follow the reply memory's change log; rows older than this are pruned daily (a worker
# that has not drafted for that long loads the memory again on its next draft).
MEMORY_CHANGES_KEEP_S = envint("MEMORY_CHANGES_KEEP_S", "86400")
if MEMORY_CHANGES_KEEP_S <= 0:
    raise ImproperlyConfiguredEnv("MEMORY_CHANGES_KEEP_S must be above 0")
CELERY_BEAT_SCHEDULE["prune-reply-memory-changes"] = {
    "task": "chatdesk.knowledge.tasks.prune_reply_memory_changes",
    "schedule": 86400.0,
}
if CLASSIFIER_TRAIN_EVERY_S > 0:
    CELERY_BEAT_SCHEDULE["train-classifier"] = {
        "task": "chatdesk.knowledge.tasks.train_classifier",
        "schedule": float(CLASSIFIER_TRAIN_EVERY_S),
    }

# Drafting
# Models load from local files only: there is no hub to download from at run time, whatever the
# environment says (docs/configuration.md).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Torch threads per worker process; one per process is fastest with prefork on few cores.
TORCH_NUM_THREADS = envint("TORCH_NUM_THREADS", "1")
# The shared sentence encoder customers' words are matched with (chatdesk/drafting/encoder.py): the
# English-only default, or a multilingual one that also matches Chinese (docs/architecture.md).
SENTENCE_ENCODER = env("SENTENCE_ENCODER", "all-minilm-l6-v2")
if SENTENCE_ENCODER not in ("all-minilm-l6-v2", "multilingual-e5-small"):
    raise ImproperlyConfiguredEnv(
        f"SENTENCE_ENCODER must be all-minilm-l6-v2 or multilingual-e5-small, not {SENTENCE_ENCODER!r}"
    )
if SENTENCE_ENCODER != "all-minilm-l6-v2" and CLASSIFIER_ENCODER == "tuned":
    raise ImproperlyConfiguredEnv("CLASSIFIER_ENCODER=tuned needs the fine-tunable all-minilm-l6-v2 encoder")
# A knowledge passage written in another language than the customer's counts this much of its similarity.
OTHER_LANGUAGE_WEIGHT = envfloat("OTHER_LANGUAGE_WEIGHT", "0.8")
if not 0 <= OTHER_LANGUAGE_WEIGHT <= 1:
    raise ImproperlyConfiguredEnv("OTHER_LANGUAGE_WEIGHT must be between 0 and 1")
DRAFT_ENGINE = env("DRAFT_ENGINE", "retrieval")
# More engines for the registry, as name=dotted.path.to.EngineClass pairs separated by commas.
DRAFT_EXTRA_ENGINES: dict[str, str] = {}
for _pair in envlist("DRAFT_EXTRA_ENGINES"):
    _name, _sep, _path = (part.strip() for part in _pair.partition("="))
    if not (_name and _sep and "." in _path):
        raise ImproperlyConfiguredEnv(f"DRAFT_EXTRA_ENGINES entries must be name=dotted.path, not {_pair!r}")
    DRAFT_EXTRA_ENGINES[_name] = _path
# Below this confidence a draft is still shown but the conversation is escalated (until
# calibrate_escalation has chosen thresholds from the desk's own history; docs/escalation.md).
# Whether replies agents wrote themselves (not drafts they approved or edited) join the reply memory
# at once ("auto") or once a manager approved them ("review"; /knowledge/memory/).
MEMORY_AGENT_REPLIES = env("MEMORY_AGENT_REPLIES", "review")
if MEMORY_AGENT_REPLIES not in ("auto", "review"):
    raise ImproperlyConfiguredEnv(f"MEMORY_AGENT_REPLIES must be auto or review, not {MEMORY_AGENT_REPLIES!r}")
DRAFT_ESCALATE_BELOW = envfloat("DRAFT_ESCALATE_BELOW", "0.45")
# Calibration: the answered precision thresholds are chosen for (a manager may override it in the
# admin's escalation policy), the labelled drafts a topic needs for a threshold of its own, how much
# of a draft an edit may change before the draft counts as wrong (normalised edit distance, 0 to 1),
# and how often the beat task recalibrates (0: never, only by command).
ESCALATION_TARGET_PRECISION = envfloat("ESCALATION_TARGET_PRECISION", "0.97")
if not 0.5 <= ESCALATION_TARGET_PRECISION <= 1:
    raise ImproperlyConfiguredEnv("ESCALATION_TARGET_PRECISION must be between 0.5 and 1")
CALIBRATION_MIN_EXAMPLES = envint("CALIBRATION_MIN_EXAMPLES", "50")
CALIBRATION_MAX_EDIT = envfloat("CALIBRATION_MAX_EDIT", "0.3")
CALIBRATE_EVERY_S = envint("CALIBRATE_EVERY_S", "86400")
if CALIBRATE_EVERY_S > 0:
    CELERY_BEAT_SCHEDULE["calibrate-escalation"] = {
        "task": "chatdesk.knowledge.tasks.calibrate_escalation",
        "schedule": float(CALIBRATE_EVERY_S),
    }
# "We don't answer this": a message whose nearest out-of-scope example is at least this much more
# similar (cosine) than its nearest in-scope key text is escalated as out of scope.
OUT_OF_SCOPE_MARGIN = envfloat("OUT_OF_SCOPE_MARGIN", "0.0")
# Presence: an agent whose dashboard sockets all closed stays online this long (a reload); a socket not
# heard from for AGENT_PRESENCE_STALE_S (clients ping every 25 s) no longer counts.
AGENT_OFFLINE_GRACE_S = envint("AGENT_OFFLINE_GRACE_S", "30")
AGENT_PRESENCE_STALE_S = envint("AGENT_PRESENCE_STALE_S", "90")
# Escalated conversations are assigned automatically only to agents responsible for fewer than this.
AGENT_MAX_ASSIGNED = envint("AGENT_MAX_ASSIGNED", "5")
# How much each escalation reason raises a conversation's place in the agents' queue (summed over the
# distinct reasons active in it). "reason=weight,..." overrides some of them.
ESCALATION_WEIGHTS = {
    "sla_breach": 40,
    "negative_sentiment": 30,
    "sensitive": 30,
    "injection": 25,
    "customer_request": 20,
    "repeated_question": 15,
    "draft_failed": 10,
    "out_of_scope": 10,
    "low_confidence": 5,
}
for _item in filter(None, os.environ.get("ESCALATION_WEIGHTS", "").split(",")):
    _reason, _, _weight = _item.partition("=")
    if _reason.strip() not in ESCALATION_WEIGHTS or not _weight.strip().isdigit():
        raise ImproperlyConfiguredEnv(f"ESCALATION_WEIGHTS: expected reason=whole number, got {_item!r}")
    ESCALATION_WEIGHTS[_reason.strip()] = int(_weight)
# A customer message whose sentiment (-1..1) is below this flags negative_sentiment (docs/escalation.md).
ESCALATION_SENTIMENT_BELOW = envfloat("ESCALATION_SENTIMENT_BELOW", "-0.45")
if not -1 <= ESCALATION_SENTIMENT_BELOW <= 1:
    raise ImproperlyConfiguredEnv("ESCALATION_SENTIMENT_BELOW must be between -1 and 1")
# A question this similar (0..1) to the customer's previous one, asked right after a reply, flags repeated_question.
ESCALATION_REPEAT_SIMILARITY = envfloat("ESCALATION_REPEAT_SIMILARITY", "0.75")
if not 0 < ESCALATION_REPEAT_SIMILARITY <= 1:
    raise ImproperlyConfiguredEnv("ESCALATION_REPEAT_SIMILARITY must be above 0 and at most 1")
# Pending drafts older than this are queued again (the broker was down, a worker died).
DRAFT_REQUEUE_AFTER_S = envint("DRAFT_REQUEUE_AFTER_S", "30")
# Drafts that never finish within this are marked failed and escalated.
DRAFT_FAIL_AFTER_S = envint("DRAFT_FAIL_AFTER_S", "120")
# A draft is started at most this many times (a worker died under it, its task failed); then it fails.
DRAFT_MAX_ATTEMPTS = envint("DRAFT_MAX_ATTEMPTS", "3")
if DRAFT_MAX_ATTEMPTS < 1:
    raise ImproperlyConfiguredEnv("DRAFT_MAX_ATTEMPTS must be at least 1")
# The sweep fails a draft at the last sweep before it is DRAFT_FAIL_AFTER_S old.
if not 0 < DRAFT_SWEEP_EVERY_S < DRAFT_FAIL_AFTER_S:
    raise ImproperlyConfiguredEnv("DRAFT_SWEEP_EVERY_S must be above 0 and below DRAFT_FAIL_AFTER_S")
DRAFT_HISTORY_TURNS = envint("DRAFT_HISTORY_TURNS", "12")
# Who writes drafts: "desk" (the DRAFT_ENGINE on the workers; integrations may post drafts too) or
# "external" (only integrations, over POST /api/v1/conversations/<id>/drafts). In external mode a
# conversation whose draft has not arrived within EXTERNAL_DRAFT_TIMEOUT_S is escalated (draft_failed),
# checked every EXTERNAL_DRAFT_SWEEP_EVERY_S by the beat sweep.
DRAFTS_SOURCE = env("DRAFTS_SOURCE", "desk")
if DRAFTS_SOURCE not in ("desk", "external"):
    raise ImproperlyConfiguredEnv(f"DRAFTS_SOURCE must be desk or external, not {DRAFTS_SOURCE!r}")
EXTERNAL_DRAFT_TIMEOUT_S = envint("EXTERNAL_DRAFT_TIMEOUT_S", "120")
EXTERNAL_DRAFT_SWEEP_EVERY_S = envfloat("EXTERNAL_DRAFT_SWEEP_EVERY_S", "10")
if EXTERNAL_DRAFT_TIMEOUT_S <= 0 or EXTERNAL_DRAFT_SWEEP_EVERY_S <= 0:
    raise ImproperlyConfiguredEnv("EXTERNAL_DRAFT_TIMEOUT_S and EXTERNAL_DRAFT_SWEEP_EVERY_S must be above 0")
if DRAFTS_SOURCE == "external":
    CELERY_BEAT_SCHEDULE["external-drafts-time-out"] = {
        "task": "chatdesk.conversations.tasks.external_drafts_time_out",
        "schedule": EXTERNAL_DRAFT_SWEEP_EVERY_S,
        "options": {"expires": EXTERNAL_DRAFT_SWEEP_EVERY_S},
    }

# REST API (docs/api.md): requests per API token per minute (0: no limit); beyond it, 429 with Retry-After.
API_RATE_LIMIT_PER_MINUTE = envint("API_RATE_LIMIT_PER_MINUTE", "600")

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
# A socket with this many received frames not yet handled is not read until they are (backpressure).
WS_MAX_QUEUED_FRAMES = envint("WS_MAX_QUEUED_FRAMES", "64")

# Customer chat limits
CHAT_MAX_MESSAGE_CHARS = envint("CHAT_MAX_MESSAGE_CHARS", "4000")
CHAT_RATE_LIMIT_MESSAGES = envint("CHAT_RATE_LIMIT_MESSAGES", "5")
CHAT_RATE_LIMIT_WINDOW_S = envint("CHAT_RATE_LIMIT_WINDOW_S", "10")
CHAT_TOKEN_MAX_AGE_DAYS = envint("CHAT_TOKEN_MAX_AGE_DAYS", "30")
# Floods: frames of any kind per socket, hellos per socket and per client address, customer messages and
# new conversations per client address (0 turns a per-address limit off). See docs/reliability.md.
WS_FRAMES_PER_SOCKET = envint("WS_FRAMES_PER_SOCKET", "60")
WS_FRAMES_WINDOW_S = envint("WS_FRAMES_WINDOW_S", "10")
CHAT_HELLOS_PER_MINUTE_PER_SOCKET = envint("CHAT_HELLOS_PER_MINUTE_PER_SOCKET", "10")
CHAT_HELLOS_PER_MINUTE_PER_ADDRESS = envint("CHAT_HELLOS_PER_MINUTE_PER_ADDRESS", "120")
CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS = envint("CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS", "120")
CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS = envint("CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS", "60")
# Replays (welcome, history) carry at most this many messages, and never more than half a frame's bytes.
CHAT_REPLAY_MESSAGES = envint("CHAT_REPLAY_MESSAGES", "200")
COMPANY_NAME = env("COMPANY_NAME", "Northwind Goods")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "agents:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
# The languages the desk speaks to customers and people (issue: two languages); the first is the fallback.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# The compiled catalogues (django.mo, djangojs.mo) are committed next to their .po files: docs/i18n.md.
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and numbers are written in the page's language (Django's formats, with the desk's few changes there).
FORMAT_MODULE_PATH = ["chatdesk.formats"]
# The time zone of pages for people who chose none on Preferences (docs/i18n.md).
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Django's finders, except that static/vendor/axe-core (a test tool) is neither served nor collected.
STATICFILES_FINDERS = [
    "chatdesk.static_finders.DeskFileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Daphne serves /static/ itself unless a proxy in front does it (production).
SERVE_STATIC = envbool("SERVE_STATIC", "True")

# Every record goes through the root logger's one handler, whose filter masks e-mail addresses, card
# numbers, IBANs and phone numbers first; Django's own handlers (console when DEBUG, mail to ADMINS) are
# dropped so nothing bypasses it. Celery workers keep this configuration (CELERY_WORKER_HIJACK_ROOT_LOGGER).
# "plain" lines, or "json": one object per record ({"time", "level", "logger", "message", "exc_info"}) for
# log shippers. Either way personal data is masked first (log_filters.MaskPersonalData).
LOG_FORMAT = env("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfiguredEnv(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_pii": {"()": "chatdesk.log_filters.MaskPersonalData"},
        "refusals_without_traceback": {"()": "chatdesk.log_filters.RefusalsWithoutTraceback"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["mask_pii"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["refusals_without_traceback"]},
        "django.server": {"handlers": [], "propagate": True},
        "django.channels.server": {"level": "WARNING"},
        # httpx logs every request's full URL at INFO: webhook URLs may carry the receiver's own token.
        "httpx": {"level": "WARNING"},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
