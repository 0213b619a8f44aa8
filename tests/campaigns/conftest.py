"""The rating specification runs against both implementations of the rules."""

import pytest
from django.db import connection


@pytest.fixture(params=["orm", "sql"])
def rating_path(request, settings):
    """'orm': the ORM services (every database); 'sql': one SQL function call (PostgreSQL)."""
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the SQL rating path exists on PostgreSQL only")
    settings.EVALHUB_RATING_SQL = request.param == "sql"
    return request.param
