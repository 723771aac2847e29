"""The door behind a NAT-fixing kamailio: Contact rewritten, no Expires header in the 200."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import RegistrationFailed, RegistrationSucceeded
from intercom.sip.locate import HostPort

from .kamailio_harness import Kamailio, require_kamailio

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_the_door_refreshes_by_the_lifetime_of_its_rewritten_contact(tmp_path: Path) -> None:
    require_kamailio()

    async def main() -> list[object]:
        async with Kamailio(tmp_path / "kamailio", nat=True) as server:
            door = UserAgent(
                UaConfig(
                    bind=HostPort("127.0.0.1", 0), server=HostPort("127.0.0.1", server.port),
                    user="door", password="secret", expires=600, keepalive_interval=None,
                    advertised_host="192.0.2.10",  # a private address the registrar fixes
                )
            )  # fmt: skip
            await door.start()
            try:
                kinds = (RegistrationSucceeded, RegistrationFailed)
                return [await door.wait_for(kinds, 15) for _ in range(3)]
            finally:
                await door.stop()

    outcomes = asyncio.run(main())
    # The first 200 lists 127.0.0.1 for our 192.0.2.10: its expires=10 is ours, not the 600
    # asked for; then the address it saw is registered (RFC 3581), and refreshed after 5 s.
    assert [(type(o), getattr(o, "expires", None)) for o in outcomes] == [
        (RegistrationSucceeded, 10)
    ] * 3
