"""Settings for a deployment: a real secret key and HTTPS are required."""
import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403

if "FIREGRID_SECRET_KEY" not in os.environ:
    raise ImproperlyConfigured("FIREGRID_SECRET_KEY is missing; set it to a long random string.")

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
