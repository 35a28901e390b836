"""Gateway keys: made once, stored as SHA-256, checked in constant time by lookup of the digest."""
import hashlib
import secrets

from iot.models import Gateway

KEY_BYTES = 32


def digest(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_key(code, name=""):
    """Create the gateway ``code`` or give it a new key; return (gateway, key). The key is not stored."""
    key = secrets.token_urlsafe(KEY_BYTES)
    gateway, _created = Gateway.objects.update_or_create(code=code, defaults={"key_sha256": digest(key),
                                                                             "name": name, "active": True})
    return gateway, key


def authenticate(key):
    """Return the active gateway whose key is ``key``, or None."""
    if not key:
        return None
    return Gateway.objects.filter(key_sha256=digest(key), active=True).first()
