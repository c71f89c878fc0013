"""Shared helpers for the suite's own tests."""

from __future__ import annotations

# httpx imports httpcore lazily. Pytester's in-process runs drop modules first imported during
# a run, so a later run would meet a second copy of httpcore whose exceptions httpx no longer
# maps (a ReadTimeout would escape as httpcore's). Importing it here keeps one copy.
import httpcore  # noqa: F401

pytest_plugins = ["pytester"]
