"""Fixtures of the fast workflow tests: the session's time-skipping server (tests/conftest.py,
no Postgres) and, per test, a desk that starts orders on fresh task queues.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.order_run import OrderDesk, order_desk


@pytest.fixture
async def desk(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[OrderDesk]:
    async with order_desk(time_skipping_env) as desk:
        yield desk
