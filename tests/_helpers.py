"""Helpers shared by the tests."""

import hashlib


def sha256(path):
    """Checksum of a file, to prove inputs are never modified."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
