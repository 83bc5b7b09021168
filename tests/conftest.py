"""Fixtures shared by the whole suite. Per-package fixtures live in tests/<package>/conftest.py."""
