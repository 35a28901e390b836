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
                "webmap.navigation.site",
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
LOGIN_REDIRECT_URL = "home"

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

# --- routing: road graphs, patrol routes, station coverage -------------------
import json  # noqa: E402  (kept inside this app's block)

# Speeds in km/h per OpenStreetMap highway class, for travel times on the
# streets of Chinese towns: urban arterials at 40 km/h and residential lanes
# at 20 km/h, below the posted limits because of crossings and mixed traffic.
# A posted maxspeed lowers an edge's speed. Ways of classes not listed
# (footways, steps, cycleways, paths) are left out of the graph.
# FIREGRID_ROAD_SPEEDS_KPH, a JSON object, overrides single entries.
FIREGRID_ROAD_SPEEDS_KPH = {
    "motorway": 80, "motorway_link": 40, "trunk": 60, "trunk_link": 40,
    "primary": 40, "primary_link": 30, "secondary": 35, "secondary_link": 30,
    "tertiary": 30, "tertiary_link": 25, "unclassified": 25, "residential": 20,
    "living_street": 10, "service": 15, "road": 20,
}
FIREGRID_ROAD_SPEEDS_KPH.update(json.loads(os.environ.get("FIREGRID_ROAD_SPEEDS_KPH", "{}")))
# Patrol routes: time budget and service time per stop in minutes, the
# farthest a stop may lie from a road in metres, the OR-Tools time limit in
# seconds, and how many of the highest-risk H3 cells become candidate stops.
FIREGRID_PATROL_BUDGET_MIN = float(os.environ.get("FIREGRID_PATROL_BUDGET_MIN", "120"))
FIREGRID_PATROL_SERVICE_MIN = float(os.environ.get("FIREGRID_PATROL_SERVICE_MIN", "5"))
FIREGRID_PATROL_SNAP_MAX_M = float(os.environ.get("FIREGRID_PATROL_SNAP_MAX_M", "150"))
FIREGRID_PATROL_SOLVER_TIME_LIMIT_S = float(os.environ.get("FIREGRID_PATROL_SOLVER_TIME_LIMIT_S", "1.2"))
FIREGRID_PATROL_MAX_CELLS = int(os.environ.get("FIREGRID_PATROL_MAX_CELLS", "20"))
# Value of one stop of each kind; an H3 cell's value comes from the function
# named by FIREGRID_PATROL_CELL_VALUE (dotted path): the latest risk run's
# probabilities, or Gi* hot cells while no risk run exists.
FIREGRID_PATROL_STOP_VALUES = {"ticket": 3.0, "alarm": 5.0, "reinspection": 4.0}
FIREGRID_PATROL_CELL_VALUE = os.environ.get("FIREGRID_PATROL_CELL_VALUE", "routing.patrol.risk_cell_values")
# Road network that the patrol and coverage pages use: the path of an OSM
# file loaded with load_roads (empty: the most recently loaded one).
FIREGRID_ROAD_FILE = os.environ.get("FIREGRID_ROAD_FILE", "")
# Station coverage: isochrone time in minutes and the width in metres of the
# band drawn around each reached street to form the isochrone polygon.
FIREGRID_ISOCHRONE_MIN = float(os.environ.get("FIREGRID_ISOCHRONE_MIN", "5"))
FIREGRID_ISOCHRONE_BUFFER_M = float(os.environ.get("FIREGRID_ISOCHRONE_BUFFER_M", "50"))

# --- iot: sensors, MQTT listener, alarm rules ---------------------------------
# Topics are PREFIX/sensors/<sensor code>/reading (one reading) and
# PREFIX/gateways/<gateway code>/batch (a batch), both at QoS 1.
FIREGRID_IOT_TOPIC_PREFIX = os.environ.get("FIREGRID_IOT_TOPIC_PREFIX", "firegrid/v1")
# Client id of the listener's persistent MQTT session; two listeners with
# the same id would take the session from each other.
FIREGRID_IOT_CLIENT_ID = os.environ.get("FIREGRID_IOT_CLIENT_ID", "firegrid-iot-listener")
# A device time more than this many seconds ahead of the receipt time is
# replaced by the receipt time and flagged.
FIREGRID_IOT_CLOCK_SKEW_S = int(os.environ.get("FIREGRID_IOT_CLOCK_SKEW_S", "60"))
# The listener writes at most this many messages, or this many bytes of
# payload, per transaction, and waits at most this long for a batch to
# fill. The byte limit keeps gateway batches (many readings per message)
# small enough that an alarm behind them still reaches its ticket quickly.
FIREGRID_IOT_BATCH_MESSAGES = int(os.environ.get("FIREGRID_IOT_BATCH_MESSAGES", "500"))
FIREGRID_IOT_BATCH_BYTES = int(os.environ.get("FIREGRID_IOT_BATCH_BYTES", str(1 << 20)))
FIREGRID_IOT_BATCH_WAIT_MS = int(os.environ.get("FIREGRID_IOT_BATCH_WAIT_MS", "50"))
# Seconds between the listener's checks for silent sensors.
FIREGRID_IOT_OFFLINE_CHECK_S = int(os.environ.get("FIREGRID_IOT_OFFLINE_CHECK_S", "30"))

# --- gridmap: responsibility grid, workflow, escalation, Open311, lookup ----
# Largest distance in metres from a ticket to a grid unit's edge for the
# nearest-unit fallback of grid placement; farther tickets go to the county.
FIREGRID_GRID_NEAREST_M = float(os.environ.get("FIREGRID_GRID_NEAREST_M", "200"))
# Citizen lookup: at most this many failed attempts per client address, and
# per ticket number, within the window; then HTTP 429 until it passes.
FIREGRID_LOOKUP_MAX_FAILURES = int(os.environ.get("FIREGRID_LOOKUP_MAX_FAILURES", "5"))
FIREGRID_LOOKUP_WINDOW_S = int(os.environ.get("FIREGRID_LOOKUP_WINDOW_S", "900"))
# Notification e-mails: Django's backend (console by default, SMTP in production).
EMAIL_BACKEND = os.environ.get("FIREGRID_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("FIREGRID_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("FIREGRID_EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("FIREGRID_FROM_EMAIL", "firegrid@localhost")
# Uploaded photos of on-site and rectification reports.
MEDIA_ROOT = Path(os.environ.get("FIREGRID_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
# Open311 GET endpoints are public as the GeoReport v2 specification intends
# (never with names or phones); set to false to require an api_key for reads.
FIREGRID_OPEN311_PUBLIC_READ = env_bool("FIREGRID_OPEN311_PUBLIC_READ", True)

# --- gridmap supervision: KPIs, re-inspections, reports, leaders' dashboard --
# Seconds the KPI trend of past periods is cached (0: always recomputed).
FIREGRID_KPI_TREND_CACHE_S = int(os.environ.get("FIREGRID_KPI_TREND_CACHE_S", "600"))
# TrueType font with Chinese glyphs for the PDF reports (Debian's fonts-wqy-zenhei).
FIREGRID_REPORT_FONT = os.environ.get("FIREGRID_REPORT_FONT", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
