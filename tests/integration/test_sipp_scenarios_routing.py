"""Validate callee_strict_router.xml against sipp itself, as test_sipp_scenarios.py does: a
companion playing the door routes its ACK and BYE through the strict router (both exit 0),
then sends them to the Contact as a loose router would (the scenario must fail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sipp_scenarios import both_ok, invite, pair, scenario, send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def strict_routed(method: str, cseq: int, *, uri: str, route: bool) -> str:
    route_line = "\n      Route: <sip:callee@127.0.0.2:9>" if route else ""
    return send(
        f"""
      {method} {uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Door" <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: [$peer_to]
      Call-ID: [call_id]
      CSeq: {cseq} {method}{route_line}
      Max-Forwards: 70""",
        retrans=method != "ACK",
    )


def door_ua(tmp_path: Path, *, uri: str, route: bool) -> Path:
    answered = """  <recv response="200">
    <action>
      <ereg regexp="^[[:space:]]*(.*)$" search_in="hdr" header="To:" assign_to="_,peer_to" />
    </action>
  </recv>
"""
    body = (
        invite()
        + '  <recv response="100" optional="true" />\n'
        + answered
        + strict_routed("ACK", 1, uri=uri, route=route)
        + strict_routed("BYE", 2, uri=uri, route=route)
        + '  <recv response="200" />\n'
    )
    return scenario(tmp_path, f"ua_strict_{route}", body)


def test_callee_strict_router(tmp_path: Path) -> None:
    ua = door_ua(tmp_path, uri="sip:[remote_ip]:[remote_port]", route=True)
    server, client = pair("callee_strict_router.xml", ua)
    both_ok(server, client)


def test_callee_strict_router_fails_when_the_contact_is_the_request_uri(tmp_path: Path) -> None:
    ua = door_ua(tmp_path, uri="sip:callee@127.0.0.2:9", route=False)
    server, _ = pair("callee_strict_router.xml", ua, timeout=5)
    assert server.returncode != 0, server.explain()
    assert "Failed regexp match" in server.explain()  # the Request-URI, not a time-out
