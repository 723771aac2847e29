"""Validate the scenarios of the door's end-to-end tests against sipp itself.

As in test_sipp_scenarios.py: a throwaway companion scenario plays the door, first correctly
(every sipp exits 0), then misbehaving the way the scenario under test claims to catch (it must
exit non-zero). Covers pbx_register_call.xml (test_intercom_registrar.py) and
caller_identity_refused.xml / caller_identity_answered.xml (test_intercom_incoming.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.sipp_harness import SCENARIOS, Sipp, SippResult
from tests.integration.test_sipp_scenarios import (
    REPLY,
    REPLY_200,
    REPLY_TAGGED,
    both_ok,
    digest_ua,
    register,
    scenario,
    send,
    send_sdp,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# --------------------------------------------------------------------------------------------
# pbx_register_call.xml: one companion registers the door, another places its call.
# --------------------------------------------------------------------------------------------

OK_3600 = """  <recv response="200">
    <action>
      <ereg regexp=";expires=3600$" search_in="hdr" header="Contact:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
"""


def registering_door(
    tmp_path: Path, *, password: str = "secret", unregister: bool = True, hold_ms: int = 2500
) -> Path:
    """Registers, holds the binding ``hold_ms``, then (if ``unregister``) un-REGISTERs."""
    body = (
        register(1, expires="Expires: 3600")
        + '  <recv response="401" auth="true" />\n'
        + register(2, expires="Expires: 3600", auth=digest_ua(password))
    )
    if password != "secret":
        body += '  <recv response="403" />\n'
        return scenario(tmp_path, "door_registers_wrongly", body)
    body += OK_3600 + f'  <pause milliseconds="{hold_ms}" />\n'
    if unregister:
        body += (
            register(3, expires="Expires: 0", auth=digest_ua(password))
            + '  <recv response="200" />\n'
        )
    return scenario(tmp_path, f"door_registers_{unregister}", body)


def calling_door(tmp_path: Path) -> Path:
    """Calls family: 100, 180, 200 with SDP, ACK, then hangs up with BYE."""

    def in_dialog(method: str, cseq: int) -> str:
        return send(
            f"""
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: [$peer_to]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Max-Forwards: 70""",
            retrans=method == "BYE",
        )

    body = (
        send_sdp(
            """
      INVITE sip:family@127.0.0.1:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: <sip:family@127.0.0.1:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70""",
            retrans=True,
        )
        + '  <recv response="100" />\n'
        + '  <recv response="180" />\n'
        + """  <recv response="200" rrs="true">
    <action>
      <ereg regexp="m=audio [[:digit:]]+ RTP/AVP 0" search_in="msg" check_it="true"
            assign_to="_" />
      <ereg regexp="^[[:space:]]*(.*)$" search_in="hdr" header="To:" assign_to="_,peer_to" />
    </action>
  </recv>
"""
        + in_dialog("ACK", 1)
        + '  <pause milliseconds="300" />\n'
        + in_dialog("BYE", 2)
        + '  <recv response="200" />\n'
    )
    return scenario(tmp_path, "door_calls_family", body)


def pbx(**kwargs: float) -> Sipp:
    return Sipp(
        SCENARIOS / "pbx_register_call.xml",
        calls=2,
        timeout=kwargs.get("timeout", 30.0),
        recv_timeout=kwargs.get("recv_timeout", 10.0),
    )


def companion(path: Path, server: Sipp) -> Sipp:
    return Sipp(path, remote=("127.0.0.1", server.port), timeout=30.0, recv_timeout=10.0)


async def wait_for_log(server: Sipp, text: str, timeout: float = 5.0) -> None:
    """Until the server's scenario logged ``text`` (sipp writes its log file as it goes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if text in server.log_file.read_text(errors="replace"):
                return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, f"sipp never logged {text!r}"
        await asyncio.sleep(0.02)


async def register_then_call(
    server: Sipp, registration: Path | None, call: Path | None
) -> tuple[SippResult, list[SippResult]]:
    """The registration companion first, the call companion once the server saw it register."""
    async with server:
        results: list[asyncio.Task[SippResult]] = []
        peers = []
        if registration is not None:
            peers.append(companion(registration, server))
            await peers[-1].start()
            results.append(asyncio.ensure_future(peers[-1].wait()))
            await wait_for_log(server, "registered <sip:door@")
        if call is not None:
            peers.append(companion(call, server))
            await peers[-1].start()
            results.append(asyncio.ensure_future(peers[-1].wait()))
        done = await asyncio.gather(*results)
        return await server.wait(), list(done)


def test_pbx_register_call_accepts_a_correct_door(tmp_path: Path) -> None:
    server, peers = asyncio.run(
        register_then_call(pbx(), registering_door(tmp_path), calling_door(tmp_path))
    )
    for peer in peers:
        assert peer.ok, peer.explain()
    assert server.ok, server.explain()
    assert "INVITE while the registration is registered" in server.logs
    assert "un-REGISTER with expires 0: unregistered" in server.logs
    assert server.logs.count("Digest|intercom.test|door|true|true|true") == 2, server.logs


def test_pbx_register_call_fails_on_a_call_before_registering(tmp_path: Path) -> None:
    server, peers = asyncio.run(register_then_call(pbx(timeout=4), None, calling_door(tmp_path)))
    assert peers[0].ok, peers[0].explain()  # the call itself went through
    assert not server.ok, server.explain()
    assert 'strcmp reg_state:"" and :"registered" with check_it' in server.errors, server.explain()


def test_pbx_register_call_fails_when_the_door_never_unregisters(tmp_path: Path) -> None:
    server, peers = asyncio.run(
        register_then_call(
            pbx(recv_timeout=4),
            registering_door(tmp_path, unregister=False, hold_ms=100),
            calling_door(tmp_path),
        )
    )
    for peer in peers:
        assert peer.ok, peer.explain()
    assert not server.ok, server.explain()
    assert "un-REGISTER" not in server.logs


def test_pbx_register_call_rejects_a_wrong_password(tmp_path: Path) -> None:
    async def main() -> tuple[SippResult, SippResult]:
        server = pbx(timeout=4)
        async with server:
            door = companion(registering_door(tmp_path, password="wrong"), server)
            async with door:
                return await server.wait(), await door.wait()

    server, door = asyncio.run(main())
    assert door.ok, door.explain()  # it got its 403
    assert not server.ok, server.explain()
    assert "FAIL: bad credentials" in server.logs


# --------------------------------------------------------------------------------------------
# caller_identity_refused.xml and caller_identity_answered.xml: a companion plays the door.
# --------------------------------------------------------------------------------------------

IDENTITY = {"from": "sip:mallory@pbx.test", "extra_header": "P-Asserted-Identity: <sip:a@b.c>"}
CHECK_IDENTITY = """  <recv request="INVITE">
    <action>
      <ereg regexp="^[[:space:]]*&lt;sip:mallory@pbx\\.test&gt;;tag=" search_in="hdr"
            header="From:" check_it="true" assign_to="_" />
      <ereg regexp="^[[:space:]]*&lt;sip:a@b\\.c&gt;$" search_in="hdr"
            header="P-Asserted-Identity:" check_it="true" assign_to="_" />
      <ereg regexp="^INVITE sip:door@" search_in="msg" check_it="true" assign_to="_" />
    </action>
  </recv>
"""


def refusing_door(tmp_path: Path, *, before: str = "", after: str = "") -> Path:
    """Answers ``before`` (if any) then 403, takes the ACK, then sends ``after``.

    A correct door sends the 403 alone: no 100 Trying, as the refusal is at once (RFC 3261
    §17.2.1). ``before="100 Trying"`` is the door that used to send one anyway."""
    body = CHECK_IDENTITY
    if before:
        reply = REPLY if before.startswith("100 ") else REPLY_TAGGED  # no To tag on a 100
        body += send(f"\n      SIP/2.0 {before}{reply}")
    body += send(f"\n      SIP/2.0 403 Forbidden{REPLY_TAGGED}") + '  <recv request="ACK" />\n'
    if after:
        body += send(f"\n      SIP/2.0 {after}{REPLY_TAGGED}")
    name = f"door_refuses_{before.split(' ')[0] or 'none'}_{after.split(' ')[0] or 'none'}"
    return scenario(tmp_path, name, body)


async def call_door(
    door_scenario: Path, caller: str, *, host: str = "127.0.0.1"
) -> tuple[SippResult, SippResult]:
    """Run a caller scenario (from ``host``) against a companion door; (caller, door)."""
    door = Sipp(door_scenario, timeout=20.0, recv_timeout=5.0)
    async with door:
        peer = Sipp(
            SCENARIOS / caller,
            host=host,
            remote=("127.0.0.1", door.port),
            variables=IDENTITY,
            timeout=20.0,
            recv_timeout=5.0,
        )
        async with peer:
            return await peer.wait(), await door.wait(timeout=10)


def test_caller_identity_refused_from_another_loopback_host(tmp_path: Path) -> None:
    caller, door = asyncio.run(
        call_door(refusing_door(tmp_path), "caller_identity_refused.xml", host="127.0.0.2")
    )
    both_ok(caller, door)
    assert "UDP message received" in door.messages and "127.0.0.2:" in door.messages


@pytest.mark.parametrize(
    ("before", "after"),
    [("100 Trying", ""), ("180 Ringing", ""), ("", "200 OK")],
    ids=["100-first", "180-first", "200-later"],
)
def test_caller_identity_refused_fails_on_anything_but_the_403(
    tmp_path: Path, before: str, after: str
) -> None:
    caller, _ = asyncio.run(
        call_door(
            refusing_door(tmp_path, before=before, after=after), "caller_identity_refused.xml"
        )
    )
    assert not caller.ok, caller.explain()
    assert "unexpected message" in caller.errors, caller.explain()
    assert f"received 'SIP/2.0 {before or after}" in caller.errors, caller.explain()


def answering_door(tmp_path: Path) -> Path:
    """Checks the identity, answers 100, 180, 200 with SDP, takes the ACK and the BYE."""
    contact = "\n      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>"
    body = (
        CHECK_IDENTITY
        + send(f"\n      SIP/2.0 100 Trying{REPLY}")
        + send(f"\n      SIP/2.0 180 Ringing{REPLY_TAGGED}{contact}")
        + send_sdp(f"\n      SIP/2.0 200 OK{REPLY_TAGGED}{contact}", retrans=True)
        + """  <recv request="ACK">
    <action>
      <ereg regexp="^ACK sip:door@" search_in="msg" check_it="true" assign_to="_" />
    </action>
  </recv>
  <recv request="BYE">
    <action>
      <ereg regexp="^BYE sip:door@" search_in="msg" check_it="true" assign_to="_" />
    </action>
  </recv>
"""
        + REPLY_200
    )
    return scenario(tmp_path, "door_answers", body)


def test_caller_identity_answered(tmp_path: Path) -> None:
    caller, door = asyncio.run(call_door(answering_door(tmp_path), "caller_identity_answered.xml"))
    both_ok(caller, door)


def test_caller_identity_answered_fails_when_refused(tmp_path: Path) -> None:
    caller, _ = asyncio.run(call_door(refusing_door(tmp_path), "caller_identity_answered.xml"))
    assert not caller.ok, caller.explain()
