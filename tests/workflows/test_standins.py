"""The fast tests stand on the real worker's ground: same activity names, same sandbox."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.providers import make_http_client
from schema.database import make_engine
from settings import Settings
from tests.workflows.order_run import WORKFLOW_RUNNER
from tests.workflows.standins import OrderStandIns
from worker import build_worker
from workflows.steps import RETRIES


async def test_stand_ins_replace_every_real_activity_under_its_name_and_sandbox(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    settings = Settings()
    engine = make_engine(settings.database_url)  # built, never connected
    async with make_http_client(1) as http:
        real = build_worker(time_skipping_env.client, settings, engine, http).config()
    await engine.dispose()

    registered = sorted(fn.__name__ for fn in real["activities"])
    assert sorted(fn.__name__ for fn in OrderStandIns().activities()) == registered
    # Every activity the workflow calls has its retry policy, and the worker runs it.
    assert sorted(fn.__name__ for fn in RETRIES) == registered
    runner = real["workflow_runner"]
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert runner.restrictions == WORKFLOW_RUNNER.restrictions
