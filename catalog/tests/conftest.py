"""Shared fixtures of the catalogue checks (`make catalog-check`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "catalog"))

import catalog_model as cm  # noqa: E402
import generate  # noqa: E402


@pytest.fixture(scope="session")
def catalog() -> cm.Catalog:
    return cm.load()


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site `make catalog` writes, built once into a temporary folder."""
    out = tmp_path_factory.mktemp("catalog") / "site"
    generate.build(out)
    return out
