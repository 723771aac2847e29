"""The start-up heap is frozen out of the cyclic collector, so a full collection during a call
walks only what came after."""

from __future__ import annotations

import gc
import weakref

from intercom.runtime.heap import freeze_start_up_objects


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: tracked by the collector


def test_what_is_alive_is_frozen_and_garbage_is_not() -> None:
    alive = _Node()
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage  # unreachable, only the collector frees it
    try:
        frozen = freeze_start_up_objects()
        assert frozen == gc.get_freeze_count() > 0
        assert not any(isinstance(o, _Node) for o in gc.get_objects())  # frozen objects hide
        assert gone() is None  # collected before the freeze, not frozen as garbage
        later = _Node()
        assert any(o is later for o in gc.get_objects())  # what comes after is collected as ever
    finally:
        gc.unfreeze()  # this test process runs on: hand its objects back to the collector
    assert any(o is alive for o in gc.get_objects())
