"""``intercom run``: the doorbell, its user agent, media and hardware on one event loop.

Theory of operation
-------------------
Everything the daemon decides, the :class:`~intercom.app.doorbell.Doorbell` decides: this class
only feeds it inputs (button presses, control-socket commands, SIP events, DTMF digits, media
timeouts, its own timer) and carries out the actions it returns (place or end a call, accept or
refuse one, play a tone, set the LED, pulse the relay). One ``loop.call_at`` timer serves the
doorbell's deadlines, re-armed after every step, as the user agent does for the SIP core.

Order on a SIP event: the media side sees it first (so a call's figures are final when it ends),
then the doorbell. A 183 or 200 with SDP stops any tone first, because the call's audio takes the
speaker. Start: the user agent (which sends the first REGISTER); then what only a press, a call
or a tone needs is imported (the pins' gpiozero, the media stack), one module at a time with the
event loop running in between, so that the registrar's challenge is answered after one module
rather than after all of them (a thread would overlap better but costs a malloc arena); then
the GPIO pins are opened (when the daemon was handed an opener) and the LED shows what the
doorbell says, the media and tone outputs are built, and only then the control socket and the
button start taking presses. systemd's READY follows once that first registration attempt has
an outcome (or after ``READY_WAIT``). A trusted call that arrives before the media exists gets
480. Stop (SIGTERM, SIGINT): STOPPING, the call ended, un-REGISTER, sockets, tones and GPIO
closed, the relay off: within a few seconds, exit code 0.

Home Assistant (``INTERCOM_MQTT_HOST``): a :class:`~intercom.app.publisher.Publisher` is handed
each ring after its call was placed, and the doorbell's state after every step; it never awaits
the broker. Its "Open door" command opens the door as ``intercom open`` does. The ring hook
(``INTERCOM_ON_RING``, :mod:`intercom.runtime.ring_hook`) is fired at the same point, as a task
the daemon never waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from intercom.app.actions import (
    AcceptCall,
    Action,
    HangUp,
    PlaceCall,
    PlayTone,
    PulseRelay,
    RejectCall,
    SetLed,
    StopTone,
)
from intercom.app.doorbell import Doorbell
from intercom.app.publisher import Publisher
from intercom.app.settings import Settings
from intercom.app.status import DoorbellStatus, changes, iso_time, render_status, status_line
from intercom.errors import IntercomError
from intercom.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgressed,
    Event,
    IncomingCallReceived,
    RegistrationFailed,
    RegistrationSucceeded,
)

from .control import ControlServer
from .hardware import Hardware
from .rearm import Rearm
from .state_store import StateStore, state_directory
from .systemd import SystemdNotifier
from .ua import UaConfig, UserAgent

if TYPE_CHECKING:  # imported by start(), after the first REGISTER
    from intercom.media.dtmf import DtmfDigit

    from .media_calls import MediaCalls
    from .ring_hook import RingHook
    from .tone_output import ToneOutput

logger = logging.getLogger(__name__)

LOADED_AFTER_REGISTER = (
    "intercom.hw.gpio",  # with gpiozero
    "intercom.media.pcm",  # the frame type (with numpy, while frames are arrays)
    "intercom.media.codecs",
    "intercom.media.stream",
    "intercom.hw.audio",
    "intercom.runtime.media_calls",
    "intercom.runtime.tone_output",
)
"""What :meth:`Intercom.start` imports once the first REGISTER is out, in this order: one step
each, so the heavy ones are steps of their own."""

READY_WAIT = 5.0
"""Seconds to wait for the first registration's outcome before telling systemd we are up."""
STOP_TIMEOUT = 3.0


class Intercom:
    """The running daemon.

    ``hardware``: the door's GPIO devices, or a function opening them, which :meth:`start` calls
    once the first REGISTER is out (``intercom run`` passes one: gpiozero loads meanwhile).
    """

    def __init__(
        self,
        settings: Settings,
        hardware: Hardware | Callable[[], Hardware],
        *,
        rng: random.Random | None = None,
        notifier: SystemdNotifier | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.settings = settings
        self._open_hardware = hardware if callable(hardware) else None
        self.hardware = Hardware() if callable(hardware) else hardware
        self._rng = rng or random.SystemRandom()  # the OS CSPRNG: identifiers nobody can predict
        self.notifier = notifier or SystemdNotifier()
        self.doorbell = Doorbell(settings, lambda: self.ua.endpoint.ids.call_id(), _wall)
        directory = state_directory(settings.state_dir)
        self.state = StateStore(directory) if directory is not None else None
        self.ua = UserAgent(
            UaConfig.from_settings(
                settings,
                # Strangers are refused at the SIP layer's gate, before any parsing or state;
                # the doorbell's own check of the same policy stays as defence in depth.
                is_trusted_source=self.doorbell.policy.is_trusted_source,
                instance_id=self.state.instance_id() if self.state is not None else None,
            ),
            answer_offer=self._answer_offer,
            rng=self._rng,
            on_event=self._on_sip_event,
            on_server_addresses=self.doorbell.set_server_addresses,  # each time it is resolved
        )
        self.media: MediaCalls | None = None
        self.tones: ToneOutput | None = None
        self.control = ControlServer(settings.control_socket, self._command)
        self.publisher = publisher  # Home Assistant over MQTT; made in start() when configured
        self.ring_hook: RingHook | None = None  # INTERCOM_ON_RING; made in start() when set
        self._kept_lock: tuple[int, float | None] = (0, None)
        self._kept_history = 0  # the history's version last written to state.json
        self._shown: DoorbellStatus | None = None  # the snapshot watchers last heard of
        self._status_line = ""  # the last STATUS= sent to systemd
        self._incoming_sdp: dict[str, tuple[bytes | None, str]] = {}  # offer, source IP
        self._timer = Rearm(self._on_timer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._first_registration = asyncio.Event()

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._restore_lock()
        self._restore_history()
        await self.ua.start()  # the first REGISTER is on the wire
        await _import_in_steps(LOADED_AFTER_REGISTER)  # the loop takes the 401 in between
        if self._open_hardware is not None:
            self.hardware = self._open_hardware()
            led, pattern = self.hardware.led, self.doorbell.led
            if led is not None and pattern is not None:
                led.show(pattern)  # a SetLed may have come before the pins were open
        from intercom.hw.audio import open_sink

        from .media_calls import MediaCalls
        from .tone_output import ToneOutput

        settings = self.settings
        self.tones = ToneOutput(lambda rate: open_sink(settings.audio_output, rate))
        self.media = MediaCalls(
            settings,
            self.ua.endpoint.config.local_host,
            rng=self._rng,
            on_digit=self._on_digit,
            on_timeout=self._on_media_timeout,
            on_refused=self._on_media_refused,
        )
        await self.control.start()
        if self.hardware.button is not None:
            self.hardware.button.start(self.press)
        if self.publisher is None and settings.mqtt_host is not None:
            from .mqtt import MqttPublisher  # aiomqtt is imported only when MQTT is configured

            self.publisher = MqttPublisher(settings)
        if self.publisher is not None:
            self.publisher.start(self._open_over_mqtt)
        if settings.on_ring:
            from .ring_hook import RingHook, find_program  # only with INTERCOM_ON_RING

            self.ring_hook = RingHook(settings.on_ring, name=settings.name)
            if (problem := find_program(settings.on_ring)) is not None:
                logger.warning("x INTERCOM_ON_RING: %s; every ring will fail to run it", problem)
        self._act()
        if settings.sip_server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_registration.wait(), READY_WAIT)
        self._status_line = self._summary()
        self.notifier.ready(self._status_line)
        self.notifier.start_watchdog(self._loop)
        logger.info("- ready: %s", self._status_line)

    async def run(self, *, after_start: Callable[[], object] | None = None) -> int:
        """Run until SIGTERM or SIGINT; 0 after a clean stop. ``after_start`` runs once the
        daemon is ready (``intercom run`` freezes the start-up heap there: runtime/heap.py)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        try:
            await self.start()
            if after_start is not None:
                after_start()
            await self._stopping.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.stop()
        return 0

    async def stop(self) -> None:
        logger.info("- stopping")
        self.notifier.stopping()
        self._timer.cancel()
        if self.tones is not None:
            self.tones.stop()
        try:
            await asyncio.wait_for(self.ua.stop(timeout=STOP_TIMEOUT), STOP_TIMEOUT + 1)
        except TimeoutError:
            logger.warning("x the user agent did not stop in time")
        if self.media is not None:
            self.media.close_all()
        if self.publisher is not None:
            await self.publisher.stop()  # the last states, then offline; bounded
        if self.ring_hook is not None:
            await self.ring_hook.close()  # a hook still running is terminated
        await self.control.close()
        self.hardware.close()
        self.notifier.close()

    def _summary(self, snapshot: DoorbellStatus | None = None) -> str:
        """The line of ``systemctl status intercom`` (STATUS=)."""
        settings = self.settings
        server = settings.sip_server
        where = None
        if server is not None:
            where = f"{server} ({settings.sip_transport.upper()})"
        return status_line(
            snapshot or self.doorbell.snapshot(), user=settings.sip_user or "intercom",
            server=where, target=str(settings.call_target or "nobody"),
        )  # fmt: skip

    # -- inputs ---------------------------------------------------------------------------

    def press(self) -> None:
        """The doorbell button (GPIO or ``intercom press``)."""
        self.doorbell.press(self._now())
        self._act()

    def _command(self, command: str) -> dict[str, Any]:
        """One command of the control socket (``watch``: the status, then the events)."""
        if command in ("status", "watch"):
            return {"status": self.status()}
        done = _DOORBELL_COMMANDS[command](self.doorbell, self._now())
        self._act()
        if command == "open" and not done:
            raise IntercomError("the door was not opened: no relay is configured")
        return {}

    def status(self) -> dict[str, Any]:
        """design.md's status object; the current call's figures are fresh."""
        media = self.media
        if media is not None:
            for call_id in media.call_ids:
                stats = media.stats(call_id)
                if stats is not None:
                    self.doorbell.call_stats(call_id, stats)
        return render_status(self.doorbell.snapshot())

    def _open_over_mqtt(self) -> None:
        """The "Open door" button of Home Assistant: as ``intercom open``."""
        self.doorbell.open_request(self._now(), how="over MQTT")
        self._act()

    def _answer_offer(self, call_id: str, offer: bytes) -> bytes | None:
        return self.media.answer_offer(call_id, offer) if self.media is not None else None

    def _on_sip_event(self, event: Event) -> None:
        now = self._now()
        tones = self.tones
        if isinstance(event, CallProgressed | CallAnswered) and event.sdp and tones is not None:
            tones.stop()  # the call's audio takes the speaker
        if isinstance(event, RegistrationSucceeded | RegistrationFailed):
            self._first_registration.set()
        if isinstance(event, IncomingCallReceived):
            self._incoming_sdp[event.call_id] = (event.sdp, event.source_host)
        media = self.media
        if media is not None:
            if isinstance(event, CallEnded | CallFailed):
                self._incoming_sdp.pop(event.call_id, None)
                final = media.close(event.call_id)  # the call's last figures, if it had audio
                if final is not None:
                    self.doorbell.call_stats(event.call_id, final)
            media.handle(event)
        self.doorbell.on_event(event, now)
        self._act()

    def _on_digit(self, call_id: str, digit: DtmfDigit) -> None:
        self.doorbell.on_digit(call_id, digit, self._now())
        self._act()

    def _on_media_timeout(self, call_id: str) -> None:
        self.doorbell.on_media_timeout(call_id, self._now())
        self._act()

    def _on_media_refused(self, call_id: str, reason: str) -> None:
        self.doorbell.on_media_refused(call_id, reason, self._now())
        self._act()

    def _on_timer(self) -> None:
        self.doorbell.handle_timer(self._now())
        self._act()

    # -- the door lock's state across restarts ---------------------------------------------

    def _restore_lock(self) -> None:
        lock = self.doorbell.lock
        if lock.code is None:
            return
        if self.state is None:
            logger.warning(
                "- no state directory (INTERCOM_STATE_DIR, or systemd's "
                "StateDirectory=): door-code attempts are not kept across a restart"
            )
            return
        lock.restore(self.state.load_lock(lock.lockout, time.time()), self._now())
        self._kept_lock = (lock.failures, lock.locked_until)

    def _restore_history(self) -> None:
        if self.state is None:
            return
        calls, last_ring = self.state.load_history()
        self.doorbell.history.restore(calls)
        if self.doorbell.last_ring is None:
            self.doorbell.last_ring = last_ring
        self._kept_history = self.doorbell.history.version

    def _keep_history(self) -> None:
        """After every step: write the call history when a call was added to it."""
        history = self.doorbell.history
        if history.version != self._kept_history and self.state is not None:
            self._kept_history = history.version
            self.state.save_history(history.calls, self.doorbell.last_ring)

    def _keep_lock(self) -> None:
        """After every step: write the lock's state when a wrong code or a lockout changed it."""
        lock = self.doorbell.lock
        current = (lock.failures, lock.locked_until)
        if current != self._kept_lock and self.state is not None:
            self._kept_lock = current
            self.state.save_lock(lock.record(self._now()), time.time())

    # -- actions --------------------------------------------------------------------------

    def _act(self) -> None:
        while (action := self.doorbell.next_action()) is not None:
            try:
                _CARRY_OUT[type(action)](self, action)
            except IntercomError as exc:
                logger.error("x %s: %s", type(action).__name__, exc)
        self._keep_lock()
        self._keep_history()
        self._timer.at(self.doorbell.get_timer(), self._loop)
        snapshot = self.doorbell.snapshot()
        if self.publisher is not None:
            self.publisher.update(snapshot)  # returns at once
        self._tell(snapshot)

    def _tell(self, snapshot: DoorbellStatus) -> None:
        """systemd's STATUS= when its line changed; the watchers' events (never waited on)."""
        if snapshot == self._shown:
            return
        before, self._shown = self._shown, snapshot
        line = self._summary(snapshot)
        if line != self._status_line and self._status_line:  # after READY (which sends one)
            self._status_line = line
            self.notifier.status(line)
        if self.control.watching:
            now = iso_time(time.time())
            for event in changes(before, snapshot):
                self.control.broadcast({"time": now, **event})

    def _place_call(self, action: PlaceCall) -> None:
        self._invite(action)
        wall = time.time()
        if self.publisher is not None:  # the call first, then the news of the ring
            self.publisher.ring(self._now(), wall)
        if self.ring_hook is not None:  # a task: the fork happens after this step
            target = str(self.settings.call_target)
            self.ring_hook.fire(wall=wall, target=target, call_id=action.call_id)

    def _invite(self, action: PlaceCall) -> None:
        media = self.media
        assert media is not None
        try:
            audio, offer = media.new_offer()
        except IntercomError as exc:
            self.doorbell.call_failed_to_start(action.call_id, str(exc), self._now())
            return

        def sent(call_id: str) -> None:  # the media may come from where the INVITE went
            media.attach(call_id, audio, peer_host=self.ua.endpoint.call_peer_host(call_id))

        self.ua.call(action.target, offer, call_id=action.call_id, on_sent=sent)

    def _hang_up(self, action: HangUp) -> None:
        self.ua.hangup(action.call_id, action.reason)

    def _accept(self, action: AcceptCall) -> None:
        call_id = action.call_id
        media = self.media
        if media is None:  # still starting: the media stack is loading
            self._incoming_sdp.pop(call_id, None)
            self.ua.reject(call_id, 480)
            return
        offer, source_host = self._incoming_sdp.pop(call_id, (None, None))
        answer = media.answer_incoming(call_id, offer, peer_host=source_host)
        if answer is None:
            self.ua.reject(call_id, 488)
            return
        if self.tones is not None:
            self.tones.stop()
        self.ua.accept(call_id, answer)

    def _reject(self, action: RejectCall) -> None:
        self._incoming_sdp.pop(action.call_id, None)
        self.ua.reject(action.call_id, action.status)

    def _play_tone(self, action: PlayTone) -> None:
        if self.media is None or self.tones is None:
            return  # not started: nothing plays yet
        if not self.media.play_tone(action.name):  # over the call's audio
            self.tones.play(action.name)  # or alone on the idle speaker

    def _stop_tone(self, action: StopTone) -> None:
        if self.media is not None:
            self.media.play_tone(None)
        if self.tones is not None:
            self.tones.stop()

    def _set_led(self, action: SetLed) -> None:
        if self.hardware.led is not None:
            self.hardware.led.show(action.pattern)

    def _pulse_relay(self, action: PulseRelay) -> None:
        if self.hardware.relay is not None:
            self.hardware.relay.pulse(action.seconds)

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()


_CARRY_OUT: dict[type[Action], Callable[[Intercom, Any], None]] = {
    PlaceCall: Intercom._place_call,
    HangUp: Intercom._hang_up,
    AcceptCall: Intercom._accept,
    RejectCall: Intercom._reject,
    PlayTone: Intercom._play_tone,
    StopTone: Intercom._stop_tone,
    SetLed: Intercom._set_led,
    PulseRelay: Intercom._pulse_relay,
}
"""How each action of the doorbell is carried out."""
_DOORBELL_COMMANDS: dict[str, Callable[[Doorbell, float], bool]] = {
    "press": Doorbell.press,
    "hangup": Doorbell.hangup_request,
    "open": Doorbell.open_request,
}
"""The control socket's commands that are inputs of the doorbell."""


def _wall(now: float) -> float:
    """Unix time of the event loop's ``now`` (its clock is time.monotonic)."""
    return time.time() + (now - time.monotonic())


async def _import_in_steps(names: tuple[str, ...]) -> None:
    """Import ``names`` one by one, letting the event loop run between two of them."""
    for name in names:
        importlib.import_module(name)
        # Twice: the first lets the loop poll its sockets, the second lets the callbacks of what
        # it found (the registrar's 401) run before this task imports the next module.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
