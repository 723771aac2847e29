"""Validate callee_keys_code_by_info.xml (test_intercom_registrar.py) against sipp itself.

As in test_sipp_scenarios.py: a throwaway companion scenario plays the door, first correctly
(both sipps exit 0, and the four INFOs carry Signal=2, 5, 8 and 0 in that order), then
misbehaving the way the scenario claims to catch (an INFO left unanswered: it must fail).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sipp_scenarios import (
    ANSWERED,
    REPLY_200,
    both_ok,
    in_dialog,
    invite,
    pair,
    scenario,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def info_with(digit: str) -> str:
    return f"""  <recv request="INFO">
    <action>
      <ereg regexp="^Signal={digit}" search_in="body" check_it="true" assign_to="_" />
    </action>
  </recv>
"""


def test_callee_keys_code_by_info(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_hears_the_code",
        invite()
        + '  <recv response="100" />\n'
        + ANSWERED
        + in_dialog("ACK", 1)
        + "".join(info_with(digit) + REPLY_200 for digit in "2580")
        + '  <recv request="BYE" />\n'
        + REPLY_200,
    )
    server, client = pair("callee_keys_code_by_info.xml", ua)
    both_ok(server, client)


def test_callee_keys_code_by_info_fails_when_an_info_is_not_answered(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_ignores_info",
        invite()
        + '  <recv response="100" />\n'
        + ANSWERED
        + in_dialog("ACK", 1)
        + info_with("2")
        + '  <recv request="INFO" optional="true" timeout="4000" ontimeout="done" />\n'
        + '  <label id="done" />\n'
        + '  <pause milliseconds="10" />\n',
    )
    server, _ = pair("callee_keys_code_by_info.xml", ua, timeout=8.0, recv_timeout=3.0)
    assert server.returncode != 0, server.explain()
