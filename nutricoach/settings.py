"""Settings for NutriCoach.

Every value that differs between a laptop and production comes from the environment
(see `.env.example`). Without any variable set, the project runs on embedded parts:
SQLite, the Django-Q2 ORM broker, a database cache, the local meal parser and email
written to files.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env("NUTRICOACH_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

# NOTE: the development key only exists so a fresh clone runs; `check --deploy` flags it.
SECRET_KEY = env("SECRET_KEY", default="django-insecure-development-key-change-me-in-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "ninja",
    "accounts",
    "nutricoach.jobs",
    "meals",
    "summaries",
    "notifications",
    "maintenance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = env("ROOT_URLCONF", default="nutricoach.urls")
WSGI_APPLICATION = "nutricoach.wsgi.application"

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

# Database. SQLite is shared by the web server, every cluster and the dispatcher, so it
# runs in WAL mode with IMMEDIATE transactions: writers queue on the busy timeout instead
# of failing with "database is locked" when a read transaction tries to upgrade.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
else:
    # Django-Q2 closes old connections before every task; keeping them for a minute
    # avoids a new PostgreSQL connection per job.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_IS_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nutricoach",
        }
    }
else:
    # A database cache, unlike local memory, is shared by every process on the machine,
    # so the admin can read the clusters' status. `make run` creates its table.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "nutricoach_cache",
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Email. EMAIL_URL selects SMTP: smtp://, smtp+tls:// for STARTTLS or smtp+ssl:// for
# implicit TLS, with the user and password in the URL. The embedded default writes one
# file per message under the data folder.
EMAIL_URL = env("EMAIL_URL", default="")
EMAIL_FILE_DIR = DATA_DIR / "mail"
if EMAIL_URL:
    _smtp = env.email_url("EMAIL_URL")
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _smtp["EMAIL_HOST"],
                "port": _smtp["EMAIL_PORT"],
                "username": _smtp.get("EMAIL_HOST_USER") or None,
                "password": _smtp.get("EMAIL_HOST_PASSWORD") or None,
                "use_tls": bool(_smtp.get("EMAIL_USE_TLS")),
                "use_ssl": bool(_smtp.get("EMAIL_USE_SSL")),
                "timeout": env.int("EMAIL_TIMEOUT", default=20),
            },
        }
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(EMAIL_FILE_DIR)},
        }
    }
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="NutriCoach <coach@nutricoach.localhost>")
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
STAFF_ALERT_EMAILS = env.list("STAFF_ALERT_EMAILS", default=[])

# Meal parsing. With an API key the OpenAI parser runs; without one the local parser.
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT = env.float("OPENAI_TIMEOUT", default=30.0)

# Job queues. Each queue is a Django-Q2 cluster of its own; see nutricoach/jobs/queues.py.
JOB_QUEUES = {
    "meal-processing": {
        "workers": env.int("MEAL_PROCESSING_WORKERS", default=5),
        "timeout": env.int("MEAL_PROCESSING_TIMEOUT", default=120),
        "rate_limit": env.int("MEAL_PROCESSING_RATE_LIMIT", default=10),
        "rate_window": env.int("MEAL_PROCESSING_RATE_WINDOW", default=60),
    },
    "notifications": {
        "workers": env.int("NOTIFICATIONS_WORKERS", default=10),
        "timeout": env.int("NOTIFICATIONS_TIMEOUT", default=60),
    },
    "data-aggregation": {
        "workers": env.int("DATA_AGGREGATION_WORKERS", default=2),
        "timeout": env.int("DATA_AGGREGATION_TIMEOUT", default=600),
    },
    "maintenance": {
        "workers": env.int("MAINTENANCE_WORKERS", default=1),
        "timeout": env.int("MAINTENANCE_TIMEOUT", default=900),
    },
}
# The rate limit applies to LLM calls only; the local parser is not rate limited.
JOB_RATE_LIMIT_LOCAL_PARSER = env.bool("JOB_RATE_LIMIT_LOCAL_PARSER", default=False)
# Seconds a job's lease outlasts its queue timeout before the dispatcher calls it stalled.
JOB_LEASE_GRACE_SECONDS = env.int("JOB_LEASE_GRACE_SECONDS", default=15)
# Modules with @job_task handlers outside the apps' tasks modules (the tests use this).
JOB_EXTRA_TASK_MODULES = env.list("JOB_EXTRA_TASK_MODULES", default=[])
# How long a finished job stays in the table.
JOB_RETENTION = {
    "completed_hours": env.int("JOB_RETENTION_COMPLETED_HOURS", default=24),
    "completed_per_task": env.int("JOB_RETENTION_COMPLETED_PER_TASK", default=10),
    "failed_days": env.int("JOB_RETENTION_FAILED_DAYS", default=7),
}
# Queue health alerts, checked every 5 minutes. Staff get an operations_alert when a
# queue's oldest waiting job is older than `oldest_waiting_seconds`. They also get one
# when more than `failure_rate` (0 to 1) of the jobs finished in the last
# `failure_window_minutes` failed, once at least `failure_min_finished` jobs finished.
JOB_ALERTS = {
    "oldest_waiting_seconds": env.int("JOB_ALERT_OLDEST_WAITING_SECONDS", default=300),
    "failure_rate": env.float("JOB_ALERT_FAILURE_RATE", default=0.2),
    "failure_window_minutes": env.int("JOB_ALERT_FAILURE_WINDOW_MINUTES", default=15),
    "failure_min_finished": env.int("JOB_ALERT_FAILURE_MIN_FINISHED", default=10),
}
# Bearer token for the Prometheus endpoint /metrics; empty allows staff sessions only.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The cluster whose scheduler fires every cron schedule. Exactly one cluster runs a
# scheduler, because several on SQLite fail with "database is locked".
JOB_SCHEDULER_QUEUE = "maintenance"
# The dotted path of the list of periodic jobs (nutricoach.jobs.schedules.PeriodicJob).
PERIODIC_JOBS = "nutricoach.periodic.PERIODIC_JOBS"

# The broker only carries wake-ups (a job id is never in it), so Redis losing them is
# harmless: the dispatcher re-sends a wake-up for every waiting job it finds.
Q_CLUSTER = {
    # The name salts task signatures: it must be the same in every web and worker process.
    "name": "nutricoach",
    "label": "Django-Q2 tasks",
    "workers": 1,
    "timeout": 60,
    "retry": 120,
    "save_limit": 0,
    "ack_failures": True,
    "max_attempts": 1,
    "catch_up": False,
    # Worker recycling pauses the pool; memory is capped by max_rss instead.
    "recycle": 100_000,
    "max_rss": env.int("WORKER_MAX_RSS_KB", default=400_000),
    "poll": 0.1,
    "scheduler": False,
    "ALT_CLUSTERS": {},
}
for _queue_name, _queue in JOB_QUEUES.items():
    # One Q2 task (a wake-up) runs several jobs in turn, and Q2's timeout covers the whole
    # task. A wake-up therefore claims new jobs only during its first `claim_window`
    # seconds, and Q2 allows it the job timeout on top, so every job it starts gets the
    # full job timeout.
    _queue.setdefault("claim_window", max(1, min(_queue["timeout"] // 4, 30)))
    _wakeup_timeout = _queue["timeout"] + _queue["claim_window"]
    Q_CLUSTER["ALT_CLUSTERS"][_queue_name] = {
        "workers": _queue["workers"],
        "timeout": _wakeup_timeout,
        # Q2 redelivers an unacknowledged ORM task after `retry` seconds. It must exceed
        # the timeout plus the wait of a task pulled ahead (one task per worker here).
        "retry": env.int(f"{_queue_name.upper().replace('-', '_')}_RETRY", default=2 * _wakeup_timeout + 60),
        "queue_limit": _queue["workers"],
        "scheduler": _queue_name == JOB_SCHEDULER_QUEUE,
    }
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

NINJA_PAGINATION_PER_PAGE = 50

# Production hardening; `manage.py check --deploy` checks these.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "loggers": {
        "nutricoach": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO"), "propagate": True},
        "meals": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO"), "propagate": True},
        "summaries": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO"), "propagate": True},
        "notifications": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO"), "propagate": True},
        "maintenance": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO"), "propagate": True},
        "django-q": {"handlers": ["console"], "level": env("Q2_LOG_LEVEL", default="WARNING"), "propagate": False},
    },
}

# The covering index on meals only helps PostgreSQL. SQLite builds it without the
# included columns, which this warning reports.
SILENCED_SYSTEM_CHECKS = ["models.W040", *env.list("EXTRA_SILENCED_SYSTEM_CHECKS", default=[])]

# Maintenance (the maintenance app): nightly cleanup, archiving and retention.
# Regular files in this folder, at any depth, are removed once they are older than
# MAINTENANCE_TEMP_MAX_AGE_HOURS (by modification time).
MAINTENANCE_TEMP_DIR = Path(env("MAINTENANCE_TEMP_DIR", default=str(DATA_DIR / "tmp")))
MAINTENANCE_TEMP_MAX_AGE_HOURS = env.int("MAINTENANCE_TEMP_MAX_AGE_HOURS", default=24)
# Meals eaten longer ago than this are archived: left out of the API and the admin list,
# still counted in their daily summaries.
MAINTENANCE_MEAL_ARCHIVE_AFTER_DAYS = env.int("MAINTENANCE_MEAL_ARCHIVE_AFTER_DAYS", default=365)
# Rows (or files) one statement handles, and how many batches one job runs before it
# hands the rest to a follow-up job.
MAINTENANCE_BATCH_SIZE = env.int("MAINTENANCE_BATCH_SIZE", default=1000)
MAINTENANCE_BATCHES_PER_JOB = env.int("MAINTENANCE_BATCHES_PER_JOB", default=50)
# Seconds a maintenance lock stays valid without renewal. Django-Q2 kills a maintenance
# worker at the queue timeout, so a crashed holder blocks the next run at most this long.
MAINTENANCE_LOCK_SECONDS = env.int("MAINTENANCE_LOCK_SECONDS", default=JOB_QUEUES["maintenance"]["timeout"] + 60)
