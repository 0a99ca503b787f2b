"""Fixtures of the gateway core tests: the session's SoftHSM2 token (softhsm_kit.py)."""

from __future__ import annotations

import pytest
from softhsm_kit import SoftHsmToken, make_token


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    return make_token(tmp_path_factory.mktemp("softhsm"))
