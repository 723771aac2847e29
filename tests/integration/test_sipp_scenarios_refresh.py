"""Validate callee_session_refresh_reinvite.xml (test_reinvite_sipp.py) against sipp itself.

As in test_sipp_scenarios.py: a throwaway companion scenario plays the door, first correctly
(it refreshes by re-INVITE with its SDP, takes the 491 and tries again: every sipp exits 0), then
misbehaving the ways the scenario claims to catch (a refresh by UPDATE, a re-INVITE without SDP:
it must exit non-zero). The companion refreshes at once; the 45 s wait is the door's business.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sipp_scenarios import (
    ANSWERED,
    REPLY_200,
    SDP,
    pair,
    scenario,
    send,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DIALOG = """
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Door" <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: [$peer_to]
      Call-ID: [call_id]"""


def _invite() -> str:
    return f"""  <send retrans="500">
    <![CDATA[

      INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Door" <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>
      Supported: timer
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]
{SDP}
    ]]>
  </send>
"""


def _refresh(method: str, cseq: int, *, sdp: bool) -> str:
    body = (
        f"\n      Content-Type: application/sdp\n      Content-Length: [len]\n{SDP}"
        if sdp
        else ("\n      Content-Length: 0\n\n")
    )
    return f"""  <send retrans="500">
    <![CDATA[

      {method} [next_url] SIP/2.0{DIALOG}
      CSeq: {cseq} {method}
      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>
      Session-Expires: 90;refresher=uac
      Supported: timer
      Max-Forwards: 70{body}
    ]]>
  </send>
"""


def _ack(cseq: int) -> str:
    return send(
        f"\n      ACK [next_url] SIP/2.0{DIALOG}\n      CSeq: {cseq} ACK\n      Max-Forwards: 70"
    )


def _ack_491() -> str:
    """The ACK of the 491 (RFC 3261 §17.1.1.3): the re-INVITE's Via and branch."""
    return send(
        """
      ACK [next_url] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 2 ACK
      Max-Forwards: 70"""
    )


def _door(tmp_path: Path, first_refresh: str) -> Path:
    """The door: calls, then refreshes with ``first_refresh``, meets 491 and tries again."""
    return scenario(
        tmp_path,
        "ua_refreshes",
        _invite()
        + '  <recv response="180" />\n'
        + ANSWERED
        + _ack(1)
        + first_refresh
        + '  <recv response="491" />\n'
        + _ack_491()
        + '  <pause milliseconds="100" />\n'
        + _refresh("INVITE", 3, sdp=True)
        + '  <recv response="200" />\n'
        + _ack(3)
        + '  <recv request="BYE" />\n'
        + REPLY_200,
    )


def test_callee_session_refresh_reinvite(tmp_path: Path) -> None:
    door = _door(tmp_path, _refresh("INVITE", 2, sdp=True))
    server, client = pair("callee_session_refresh_reinvite.xml", door)
    assert server.returncode == 0, "scenario under test failed:\n" + server.explain()
    assert client.returncode == 0, "companion failed:\n" + client.explain()


@pytest.mark.parametrize(
    ("refresh", "why"),
    [
        (_refresh("UPDATE", 2, sdp=False), "UPDATE"),
        (_refresh("INVITE", 2, sdp=False), "Failed regexp match"),
    ],
    ids=["update", "reinvite-without-sdp"],
)
def test_callee_session_refresh_reinvite_fails_on_a_wrong_refresh(
    tmp_path: Path, refresh: str, why: str
) -> None:
    server, _ = pair("callee_session_refresh_reinvite.xml", _door(tmp_path, refresh))
    assert server.returncode != 0, server.explain()
    assert why in server.errors, server.explain()
