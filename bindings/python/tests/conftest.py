"""Shared fixtures. The suite runs against the installed package `mapcache`
and the libmapcache it loads: MAPCACHE_LIBRARY, or the one the wheel put in the package."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest

import mapcache


@pytest.fixture
def cache() -> Iterator[mapcache.Cache]:
    c = mapcache.Cache()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def exclusive() -> Iterator[mapcache.Cache]:
    c = mapcache.Cache(mode="exclusive")
    try:
        yield c
    finally:
        c.close()


def run_python(code: str, env_extra: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (same venv), capturing its output."""
    env = dict(os.environ)
    if env_extra is not None:
        for k, v in env_extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
