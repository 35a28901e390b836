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
