"""Shared fixtures: the real sample files and their expected values."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(os.environ.get("OMIO_SAMPLES", Path(__file__).resolve().parents[2] / "shared" / "samples"))


def load_manifest() -> dict[str, Any]:
    """The expected values of the shared samples ({} when the folder is absent)."""
    path = SAMPLES / "MANIFEST.json"
    if not path.is_file():
        return {}
    files: dict[str, Any] = json.loads(path.read_text())["files"]
    return files


@pytest.fixture
def samples() -> Path:
    if not (SAMPLES / "MANIFEST.json").is_file():
        pytest.skip(f"sample folder {SAMPLES} is absent (set OMIO_SAMPLES to run these tests)")
    return SAMPLES
