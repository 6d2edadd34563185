"""A real Django REST Framework records service for filmgate's integration tests.

Everything is set from the environment (see README.md):
  FILMGATE_DJANGO_DB          SQLite file (default: <repo>/target/peers/django.sqlite3)
  FILMGATE_DJANGO_TOKEN       token key (<= 40 chars); when set, every API view needs it
  FILMGATE_DJANGO_MIDDLEWARE  "none" = no middleware at all (no Content-Length on answers)
  FILMGATE_DJANGO_THROTTLE    DRF rate for POSTs, e.g. "5/min" (429 + Retry-After beyond it)
  FILMGATE_DJANGO_MAX_BATCH   batches longer than this are answered 413
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BASE_DIR.parent.parent
DB_PATH = os.environ.get("FILMGATE_DJANGO_DB") or str(REPO_DIR / "target/peers/django.sqlite3")
TOKEN = os.environ.get("FILMGATE_DJANGO_TOKEN", "")
THROTTLE = os.environ.get("FILMGATE_DJANGO_THROTTLE", "")

SECRET_KEY = "filmgate-tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
    "records",
    "stock",  # stock DRF: ModelViewSet, replayed uid -> 400 (see README.md)
    "nouid",  # stock DRF, models without a uid
]

if os.environ.get("FILMGATE_DJANGO_MIDDLEWARE") == "none":
    MIDDLEWARE = []
else:
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",  # sets Content-Length; APPEND_SLASH redirects
        "django.middleware.csrf.CsrfViewMiddleware",  # DRF views are csrf-exempt; token auth needs no CSRF
    ]

ROOT_URLCONF = "filmgate_drf.urls"
WSGI_APPLICATION = "filmgate_drf.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DB_PATH,
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Throttle counters must be shared by gunicorn's worker processes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": DB_PATH + "-cache",
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated" if TOKEN else "rest_framework.permissions.AllowAny"
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["records.throttling.PostRateThrottle"] if THROTTLE else [],
    "DEFAULT_THROTTLE_RATES": {"posts": THROTTLE or None},
}

MAX_BATCH = int(os.environ.get("FILMGATE_DJANGO_MAX_BATCH") or 0)
