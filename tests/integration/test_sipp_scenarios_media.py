"""Validate callee_answer_media_port.xml (test_attack_media.py) against sipp itself.

As in test_sipp_scenarios.py: a throwaway companion scenario plays the door, first correctly
(every sipp exits 0, and the answer names the RTP port the test set), then misbehaving the way
the scenario claims to catch (it must exit non-zero).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sipp_scenarios import (
    in_dialog,
    invite,
    pair,
    scenario,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

RTP_PORT = "40124"

ANSWER_NAMES_THE_PORT = f"""  <recv response="200" rrs="true">
    <action>
      <ereg regexp="m=audio {RTP_PORT} RTP/AVP 0 101" search_in="body" check_it="true"
            assign_to="_" />
      <ereg regexp="a=rtpmap:101 telephone-event/8000" search_in="body" check_it="true"
            assign_to="_" />
      <ereg regexp="^[[:space:]]*(.*)$" search_in="hdr" header="To:" assign_to="_,peer_to" />
    </action>
  </recv>
"""


def test_callee_answer_media_port(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_calls_the_test_media",
        invite()
        + '  <recv response="180" />\n'
        + ANSWER_NAMES_THE_PORT
        + in_dialog("ACK", 1)
        + '  <pause milliseconds="300" />\n'
        + in_dialog("BYE", 2)
        + '  <recv response="200" />\n',
    )
    server, client = pair("callee_answer_media_port.xml", ua, variables={"rtp_port": RTP_PORT})
    assert server.returncode == 0, "scenario under test failed:\n" + server.explain()
    assert client.returncode == 0, "companion failed:\n" + client.explain()


def test_callee_answer_media_port_fails_without_ack(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_never_acks",
        invite()
        + '  <recv response="180" />\n'
        + ANSWER_NAMES_THE_PORT
        + in_dialog("BYE", 2)
        + '  <recv response="200" optional="true" timeout="3000" ontimeout="done" />\n'
        + '  <label id="done" />\n',
    )
    server, _ = pair(
        "callee_answer_media_port.xml", ua, variables={"rtp_port": RTP_PORT}, timeout=10.0
    )
    assert server.returncode != 0, server.explain()
