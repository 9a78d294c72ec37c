"""Encryption at rest for channel credentials and cached tokens.

`SYNCSVC_ENCRYPTION_KEY` may list several keys, comma-separated, newest first: values are
encrypted with the first and decrypted with any (MultiFernet), so a key can be rotated by
prepending the new one and running `manage.py rotate_credentials`.
"""
from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.ENCRYPTION_KEYS])
