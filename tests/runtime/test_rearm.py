"""The one loop timer of a core: moved only when the deadline moves, cleared when it fires."""

from __future__ import annotations

import asyncio

from intercom.runtime.rearm import Rearm


def test_fires_once_at_the_latest_deadline_and_forgets_it():
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        timer = Rearm(lambda: fired.append(loop.time()))
        start = loop.time()
        timer.at(start + 0.5, loop)
        timer.at(start + 0.02, loop)  # moved earlier: the first call is dropped
        timer.at(start + 0.02, loop)  # unchanged: nothing to do
        await asyncio.sleep(0.1)
        assert timer.deadline is None
        timer.at(loop.time() + 0.02, loop)
        timer.at(None, loop)  # the core wants no timer any more
        await asyncio.sleep(0.05)
        return [t - start for t in fired]

    fired = asyncio.run(main())
    assert len(fired) == 1 and 0.02 <= fired[0] < 0.1


def test_cancel_stops_the_call_and_without_a_loop_the_deadline_is_only_kept():
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        timer = Rearm(lambda: fired.append("fired"))
        timer.at(loop.time() + 0.01, loop)
        timer.cancel()
        timer.at(timer.deadline, loop)  # the same deadline does not re-arm after cancel
        idle = Rearm(lambda: fired.append("idle"))
        idle.at(loop.time(), None)
        assert idle.deadline is not None
        await asyncio.sleep(0.05)
        return fired

    assert asyncio.run(main()) == []
