"""Fixtures shared by the suite: real data paths and users with roles."""
import os
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parent.parent
FIXTURES_DIR = Path(__file__).resolve().parent / "data"
SHARED_DATA_DIR = Path(os.environ.get("FIREGRID_SHARED_DATA", REPO_DIR.parent / "shared" / "data"))


@pytest.fixture
def shared_data():
    """Return the real-data folder, skipping the test when it is not beside the checkout."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA_DIR} is absent; set FIREGRID_SHARED_DATA to its path")
    return SHARED_DATA_DIR


@pytest.fixture
def fixtures_dir():
    return FIXTURES_DIR


def pytest_collection_modifyitems(items):
    """Give every transactional test a serialized rollback.

    A transactional test ends by flushing the tables, which also drops the
    rows that data migrations created (role groups, the 1+3+N
    departments). Serialized rollback restores them for the tests after it.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is None or not marker.kwargs.get("transaction") or "serialized_rollback" in marker.kwargs:
            continue
        # Prepended, because pytest-django reads the first django_db marker.
        item.add_marker(pytest.mark.django_db(*marker.args, **marker.kwargs, serialized_rollback=True), append=False)
