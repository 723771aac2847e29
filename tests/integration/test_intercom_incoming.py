"""Who may call the door in, with `intercom run` against sipp (design.md, "Security").

The daemon registers at a sipp registrar on 127.0.0.1 and allows one caller, alice. Trust comes
from where an INVITE comes from (the server's addresses), never from what it says: an INVITE
claiming to be alice from 127.0.0.2 (loopback answers all of 127/8, so a sipp bound there is
another host) gets 403 and nothing more; through the trusted host, the P-Asserted-Identity the
server vouches for decides over From, both ways; alice through the server is answered at once,
with audio both ways (sipp echoes it). Refused calls leave no trace in ``intercom status``.
A host of INTERCOM_TRUSTED_HOSTS may call in but asserts nothing, and a bare allowed user name
means that user at the server's host only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .daemon_process import DaemonProcess
from .sipp_harness import Sipp, SippResult, free_port, require_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOST = "127.0.0.1"
STRANGER = "127.0.0.2"
TRUSTED_HOST = "127.0.0.3"  # INTERCOM_TRUSTED_HOSTS: may call in, may not assert identities
ALICE = "sip:alice@pbx.test"
MALLORY = "sip:mallory@pbx.test"
NO_CALL = {
    "outcome": None, "codec": None, "duration": None, "packets_sent": None,
    "packets_received": None, "packets_lost": None, "jitter_ms": None,
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _sipp_installed() -> None:
    require_sipp()


async def call_door(
    scenario: str, door_port: int, *, host: str = HOST, **variables: str
) -> SippResult:
    """One sipp caller run against the door; its result once it ended."""
    caller = Sipp(
        scenario,
        host=host,
        remote=(HOST, door_port),
        variables=variables,
        timeout=20,
        recv_timeout=10,
        extra_args=["-rtp_echo"],
    )
    async with caller:
        return await caller.wait(timeout=25)


async def _incoming_calls(tmp_path: Path) -> None:
    registrar = Sipp("registrar_digest.xml", timeout=90, recv_timeout=80)
    door_port = free_port()
    daemon = DaemonProcess(tmp_path, {
        "INTERCOM_SIP_SERVER": f"{HOST}:{registrar.port}",
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_SIP_PASSWORD": "secret",
        "INTERCOM_SIP_BIND": f"{HOST}:{door_port}",
        "INTERCOM_ALLOWED_CALLERS": f"{ALICE},carol",
        "INTERCOM_TRUSTED_HOSTS": TRUSTED_HOST,
        "INTERCOM_ANSWER_DELAY": "0",
        "INTERCOM_AUDIO_INPUT": "tone:700",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_RTP_PORTS": "49000-49999",
        "INTERCOM_LOG_LEVEL": "DEBUG",
    })  # fmt: skip
    async with registrar:
        try:
            await daemon.start()
            status = await daemon.until(
                lambda s: s["registration"]["state"] != "registering", 10, "registration"
            )
            assert {k: v for k, v in status["registration"].items() if k != "since"} == {
                "state": "registered", "last_status": 200
            }  # fmt: skip

            # 1. alice's name from a host that is not the server: 403, nothing more.
            result = await call_door("caller_identity_refused.xml", door_port, host=STRANGER)
            assert result.ok, result.explain()
            assert f"Via: SIP/2.0/UDP {STRANGER}:" in result.messages  # it came from there
            assert "refused with 403: untrusted source 127.0.0.2" in daemon.log()
            status = await daemon.status()
            assert status["call"]["state"] == "idle"
            assert status["last_call"] == NO_CALL  # a stranger leaves no trace

            # 2. through the server, From alice, but the server asserts mallory: 403.
            result = await call_door(
                "caller_identity_refused.xml", door_port,
                extra_header=f"P-Asserted-Identity: <{MALLORY}>",
            )  # fmt: skip
            assert result.ok, result.explain()
            assert (
                f"from '<{MALLORY}>' (sent by 127.0.0.1) refused with 403: asserted "
                "identity not allowed" in daemon.log()
            )
            assert (await daemon.status())["last_call"] == NO_CALL

            # 3. through the server, alice: answered at once, audio both ways, BYE from her.
            result = await call_door("caller_identity_answered.xml", door_port)
            assert result.ok, result.explain()
            status = await daemon.until(
                lambda s: s["last_call"]["outcome"] is not None, 5, "the call's end"
            )
            last = status["last_call"]
            assert last["outcome"] == "answered", last
            assert last["codec"] in ("PCMU", "PCMA"), last
            assert last["packets_sent"] > 25 and last["packets_received"] > 25, last
            assert status["call"]["state"] == "idle"

            # 4. through the server, From mallory, but the server asserts alice: answered.
            result = await call_door(
                "caller_identity_answered.xml", door_port,
                **{"from": MALLORY, "extra_header": f"P-Asserted-Identity: <{ALICE}>"},
            )  # fmt: skip
            assert result.ok, result.explain()

            # 5. a trusted host that is not the server: its P-Asserted-Identity is ignored
            # (RFC 3325 §5), so mallory asserting alice from there is mallory: 403.
            result = await call_door(
                "caller_identity_refused.xml", door_port, host=TRUSTED_HOST,
                **{"from": MALLORY, "extra_header": f"P-Asserted-Identity: <{ALICE}>"},
            )  # fmt: skip
            assert result.ok, result.explain()
            assert (
                f"from '<{MALLORY}>;tag=" in daemon.log()
                and f"(sent by {TRUSTED_HOST}) refused with 403: caller not allowed" in daemon.log()
            )

            # 6. the bare user "carol" is carol at the server's host, not carol anywhere.
            result = await call_door(
                "caller_identity_refused.xml", door_port, **{"from": "sip:carol@evil.test"}
            )
            assert result.ok, result.explain()
            result = await call_door(
                "caller_identity_answered.xml", door_port, **{"from": f"sip:carol@{HOST}"}
            )
            assert result.ok, result.explain()

            assert await daemon.terminate() == 0
            registered = await registrar.wait(timeout=15)  # un-REGISTER ends its scenario
        finally:
            await daemon.kill()
    assert registered.ok, registered.explain()
    log = daemon.log()
    assert "Traceback" not in log, log
    assert log.count(" allowed; answering in 0.0 s") == 3, log
    assert f"from '<{ALICE}>' allowed" in log, log  # call 4: the asserted identity decided


def test_only_trusted_allowed_callers_get_in(tmp_path: Path) -> None:
    asyncio.run(_incoming_calls(tmp_path))
