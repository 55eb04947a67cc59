"""cancel_and_wait stops a background task without raising its cancellation."""

from __future__ import annotations

import asyncio

from trollama.common.tasks import cancel_and_wait


async def test_a_running_task_is_cancelled_and_awaited() -> None:
    cleaned_up = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()

    task = asyncio.create_task(forever())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned_up.is_set()


async def test_no_task_and_a_finished_task_are_fine() -> None:
    await cancel_and_wait(None)
    done = asyncio.create_task(asyncio.sleep(0, result=7))
    await done
    await cancel_and_wait(done)
    assert done.result() == 7
