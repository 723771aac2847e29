"""The demo's simulated phone: registers at the PBX, rings for a moment, answers, keys digits.

It is our own user agent and media (a 1200 Hz tone as its voice, nothing played), the same code
the intercom runs, configured as a handset would be.
"""

from __future__ import annotations

import asyncio
import random

from intercom.app.settings import Settings
from intercom.media.stream import StreamStats
from intercom.runtime.media_calls import MediaCalls
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import CallEnded, Event, IncomingCallReceived
from intercom.sip.locate import HostPort


class DemoPhone:
    """A handset registered as ``user`` at ``server`` that answers after ``ring_seconds``."""

    def __init__(
        self,
        *,
        host: str,
        server: str,
        user: str,
        password: str,
        ring_seconds: float,
        port_range: tuple[int, int],
    ) -> None:
        self.ring_seconds = ring_seconds
        settings = Settings(
            sip_server=HostPort.parse(server),
            sip_user=user,
            sip_password=password,
            sip_bind=HostPort(host, 0),
            rtp_ports=port_range,
            audio_input="tone:1200",
            audio_output="null",
        )
        self.media = MediaCalls(settings, host, rng=random.Random(2))
        self.ua = UserAgent(
            UaConfig.from_settings(settings),
            answer_offer=self.media.answer_offer,
            on_event=self._on_event,
            rng=random.Random(3),
        )
        self.call_id: str | None = None
        self.stats: StreamStats | None = None

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CallEnded):
            self.stats = self.media.close(event.call_id)
        self.media.handle(event)
        if isinstance(event, IncomingCallReceived):
            self.call_id = event.call_id
            self._ring_then_answer(event.call_id, event.sdp)

    def _ring_then_answer(self, call_id: str, sdp: bytes | None) -> None:
        self.ua.ring(call_id)

        def answer() -> None:
            answer = self.media.answer_incoming(call_id, sdp)
            if answer is None:
                self.ua.reject(call_id, 488)
            else:
                self.ua.accept(call_id, answer)

        asyncio.get_running_loop().call_later(self.ring_seconds, answer)

    async def stop(self) -> None:
        self.media.close_all()
        await self.ua.stop()
