"""Settings for the pytest suite: the same database server, fast hashing."""
import os

from .base import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Separate test databases let several suites run at once on one server.
if os.environ.get("FIREGRID_TEST_DB"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["FIREGRID_TEST_DB"]}
