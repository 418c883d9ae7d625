"""The simulators keep their state across a restart (devstack/simulators/state.py): what a
provider booked, and the first answer to each Idempotency-Key."""

from __future__ import annotations

from pathlib import Path

from devstack.harness import free_port
from devstack.simulators import create_simulators
from settings import Settings
from tests.stack import serve


async def test_a_restarted_simulator_knows_its_pick_tasks_and_answers_a_retry_alike(
    tmp_path: Path,
) -> None:
    settings = Settings(devstack=True, simulator_autopilot=False)
    task = {"order_ref": "o-1", "callback_url": "http://127.0.0.1:9/none", "checklist": []}
    headers = {"Idempotency-Key": "pick-o-1"}
    port = free_port()
    async with serve(create_simulators(settings, tmp_path), port) as simulators:
        created = await simulators.post("/warehouse/v1/pick-tasks", json=task, headers=headers)
        assert created.status_code == 201
    assert (tmp_path / "state.json").exists()

    async with serve(create_simulators(settings, tmp_path), port) as simulators:
        again = await simulators.post("/warehouse/v1/pick-tasks", json=task, headers=headers)
        listed = (await simulators.get("/warehouse/v1/pick-tasks")).json()
    assert again.json() == created.json()  # the same task, not a second one
    assert [t["task_id"] for t in listed] == [created.json()["task_id"]]

    async with serve(create_simulators(settings), port) as simulators:  # nothing kept
        assert (await simulators.get("/warehouse/v1/pick-tasks")).json() == []
