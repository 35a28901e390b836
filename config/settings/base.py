"""Settings shared by every environment, read from environment variables.

Each variable has a default that is safe on a developer's machine: the app
listens on loopback, debugging is off and no basemap tiles are fetched.
"""
import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Generated files (database cluster, caches, demo data, rejects) live here.
VAR_DIR = Path(os.environ.get("FIREGRID_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("FIREGRID_SECRET_KEY", "firegrid-development-key-not-for-production")
DEBUG = env_bool("FIREGRID_DEBUG", False)
ALLOWED_HOSTS = env_list("FIREGRID_ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "spatial",
    "gridmap",
    "routing",
    "iot",
    "webmap",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# The scripts export DATABASE_URL for the project-local cluster; this default
# matches that cluster so that manage.py works from a plain shell too.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgis://postgres@127.0.0.1:55432/firegrid"),
        conn_max_age=60,
    )
}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "webmap:planner-map"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# Leaflet and its plugins come from the npm registry into node_modules/ at
# set-up time, so pages never load a script from a CDN.
NODE_MODULES_DIR = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    ("vendor/leaflet", NODE_MODULES_DIR / "leaflet" / "dist"),
    ("vendor/leaflet.markercluster", NODE_MODULES_DIR / "leaflet.markercluster" / "dist"),
    ("vendor/leaflet.heat", NODE_MODULES_DIR / "leaflet.heat" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Debian 12 ships GDAL 3.6, older than Django 5.2 tests against (gis.W001).
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("FIREGRID_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- FireGrid ---------------------------------------------------------------
# H3 resolutions of the two cell columns on every ticket. Resolution 9 cells
# average about 0.105 km2 (a city block), resolution 7 about 5.16 km2.
FIREGRID_H3_RES_FINE = int(os.environ.get("FIREGRID_H3_RES_FINE", "9"))
FIREGRID_H3_RES_COARSE = int(os.environ.get("FIREGRID_H3_RES_COARSE", "7"))

# Study area as "min_lng,min_lat,max_lng,max_lat" in WGS84 degrees. Tickets
# outside it keep their location but are flagged. The default is Xiangzhou
# County, Laibin, Guangxi, from its official boundary converted to WGS84.
FIREGRID_STUDY_AREA = os.environ.get("FIREGRID_STUDY_AREA", "109.40,23.70,110.10,24.33")

# Basemap tiles for the web map: "none" (default, works on closed intranets),
# "osm" or "tianditu", or a URL template with {z}/{x}/{y}.
FIREGRID_BASEMAP = os.environ.get("FIREGRID_BASEMAP", "none")
FIREGRID_BASEMAP_ATTRIBUTION = os.environ.get("FIREGRID_BASEMAP_ATTRIBUTION", "")
FIREGRID_TIANDITU_KEY = os.environ.get("FIREGRID_TIANDITU_KEY", "")

# Most ticket markers drawn with popups on one map; the heatmap and the H3
# layers always use every ticket that matches the filter.
FIREGRID_MAP_MAX_MARKERS = int(os.environ.get("FIREGRID_MAP_MAX_MARKERS", "2000"))

MQTT_URL = os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")
