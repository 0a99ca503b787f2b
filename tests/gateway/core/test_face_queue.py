"""Face work waits in a bounded queue (issue #16, item 5): with `face_queue_max` jobs queued
or running, the next is refused at once with 503 `busy` and `retry_after_s`, instead of
holding its decoded frames in an unbounded wait."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.core.config import Settings
from gateway.core.errors import Busy
from gateway.services.state import AppState


def _state(tmp_path: Path, queue: int) -> AppState:
    settings = Settings(data_dir=tmp_path, connection=tmp_path / "c.json", mode="development",
                        face_queue_max=queue)
    none = cast(Any, None)  # no database, keys, ledger or staff: only run_face is used
    return AppState(settings=settings, db=none, keys=none, ledger=none, staff=none)


async def test_face_jobs_beyond_the_queue_are_refused_busy(tmp_path: Path) -> None:
    state = _state(tmp_path, 3)
    release = threading.Event()
    jobs = [asyncio.ensure_future(state.run_face(release.wait, 10)) for _ in range(3)]
    await asyncio.sleep(0.05)  # all three queued or running (two run: FACE_CONCURRENCY)
    with pytest.raises(Busy) as refused:
        await state.run_face(lambda: None)
    assert refused.value.status == 503 and refused.value.code == "busy"
    assert refused.value.details == {"retry_after_s": 1}
    release.set()
    assert await asyncio.gather(*jobs) == [True, True, True]
    # The queue empties as jobs finish: the next one runs.
    assert await state.run_face(lambda: 7) == 7
