"""Hostile-input tests: every test here is marked `hostile` (they run in `make test`; select
them alone with `-m hostile`). Tokens are real: users in the role groups, as
`createapitoken` makes them."""
from __future__ import annotations

import pytest

from tests.support.writes import TableSnapshot


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/hostile/" in str(item.fspath):
            item.add_marker(pytest.mark.hostile)


def role_token(*roles: str) -> str:
    """A real API token for a new user in the given role groups."""
    import uuid

    from syncsvc.permissions import api_token

    return api_token(f"{'-'.join(roles) or 'none'}-{uuid.uuid4().hex[:8]}", *roles)


@pytest.fixture
def snapshot(db) -> TableSnapshot:
    return TableSnapshot()
