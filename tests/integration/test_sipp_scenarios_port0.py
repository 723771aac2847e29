"""Validate callee_reoffer_port0.xml (test_reinvite_sipp.py) against sipp itself.

As in test_sipp_scenarios.py: a throwaway companion scenario plays the door, first correctly
(its answer to the re-INVITE has the audio at port 0: every sipp exits 0), then misbehaving the
ways the scenario claims to catch (488, or an answer with audio on a port: it must exit non-zero).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sipp_scenarios import (
    ANSWERED,
    REPLY,
    REPLY_200,
    in_dialog,
    invite,
    pair,
    scenario,
    send,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REOFFER = """  <recv request="INVITE">
    <action>
      <ereg regexp="m=audio 0 RTP/AVP" search_in="body" check_it="true" assign_to="_" />
    </action>
  </recv>
"""


def _door_answering(tmp_path: Path, audio_port: str | None) -> Path:
    """The door: calls, then answers the re-INVITE with audio at ``audio_port`` (None: 488)."""
    if audio_port is None:
        reply = send(f"\n      SIP/2.0 488 Not Acceptable Here{REPLY}")
    else:
        reply = f"""  <send>
    <![CDATA[

      SIP/2.0 200 OK{REPLY}
      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=ua 1 2 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {audio_port} RTP/AVP 0

    ]]>
  </send>
  <recv request="ACK" />
"""
    return scenario(
        tmp_path,
        "ua_answers_the_reoffer",
        invite()
        + '  <recv response="100" />\n'
        + '  <recv response="180" />\n'
        + ANSWERED
        + in_dialog("ACK", 1)
        + REOFFER
        + reply
        + '  <recv request="BYE" />\n'
        + REPLY_200,
    )


def test_callee_reoffer_port0(tmp_path: Path) -> None:
    server, client = pair("callee_reoffer_port0.xml", _door_answering(tmp_path, "0"))
    assert server.returncode == 0, "scenario under test failed:\n" + server.explain()
    assert client.returncode == 0, "companion failed:\n" + client.explain()


@pytest.mark.parametrize("audio_port", [None, "40000"], ids=["488", "audio-on-a-port"])
def test_callee_reoffer_port0_fails_unless_the_answer_is_at_port_0(
    tmp_path: Path, audio_port: str | None
) -> None:
    server, _ = pair("callee_reoffer_port0.xml", _door_answering(tmp_path, audio_port))
    assert server.returncode != 0, server.explain()
    why = "received 'SIP/2.0 488" if audio_port is None else "Failed regexp match"
    assert why in server.errors, server.explain()
