"""Validate the sipp scenarios of tests/integration/sipp against sipp itself.

Each scenario is meant to judge the project's user agent. Here a throwaway companion scenario
plays that user agent instead, written inline: first behaving correctly (both sipp processes
must exit 0), then misbehaving in the way a scenario claims to catch (the scenario under test
must exit non-zero). This proves the scenarios are well-formed, run to the end, and check what
their header comments say, independently of the project's UA (test_ua_against_sipp.py points
them at the real one).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.integration.sipp_harness import (
    SCENARIOS,
    Sipp,
    SippResult,
    free_media_port,
    free_port,
    require_sipp,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SCENARIO_FILES = sorted(SCENARIOS.glob("*.xml"))

HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'

# SDP offers and answers for the companions.
SDP = """
      v=0
      o=ua 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
"""

# Response headers copied from the request just received (a UAS companion's replies).
REPLY = """
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]"""
REPLY_TAGGED = """
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ua[call_number]
      [last_Call-ID:]
      [last_CSeq:]"""


def send(text: str, *, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return (
        f"  <send{attr}>\n    <![CDATA[\n{text}\n      Content-Length: [len]\n\n"
        "    ]]>\n  </send>\n"
    )


def send_sdp(text: str, *, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return (
        f"  <send{attr}>\n    <![CDATA[\n{text}\n      Content-Type: application/sdp\n"
        f"      Content-Length: [len]\n{SDP}\n    ]]>\n  </send>\n"
    )


def scenario(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.xml"
    path.write_text(f'{HEAD}<scenario name="{name}">\n{body}</scenario>\n')
    return path


async def run_pair(
    server: Sipp, client_scenario: Path, *, extra_args: list[str] | None = None
) -> tuple[SippResult, SippResult]:
    """Start ``server``, then a client sipp aimed at it; return (server, client) results."""
    async with server:
        client = Sipp(
            client_scenario,
            transport=server.transport,
            remote=("127.0.0.1", server.port),
            timeout=30.0,
            recv_timeout=10.0,
            extra_args=extra_args or [],
        )
        async with client:
            client_result, server_result = await asyncio.gather(client.wait(), server.wait())
    return server_result, client_result


def pair(name: str, companion: Path, **server_kwargs: Any) -> tuple[SippResult, SippResult]:
    """Run scenario ``name`` as the server against ``companion``; (server, client) results."""
    return asyncio.run(run_pair(Sipp(SCENARIOS / name, **server_kwargs), companion))


def both_ok(server: SippResult, client: SippResult) -> None:
    assert server.returncode == 0, "scenario under test failed:\n" + server.explain()
    assert client.returncode == 0, "companion failed:\n" + client.explain()


# --------------------------------------------------------------------------------------------
# Register-side companions: the UA registering.
# --------------------------------------------------------------------------------------------


def register(
    cseq: int, *, expires: str = "Expires: 60", contact_params: str = "", auth: str = ""
) -> str:
    """A REGISTER from door@intercom.test; ``auth`` is an extra header line (or keyword)."""
    auth_line = f"\n      {auth}" if auth else ""
    expires_line = f"\n      {expires}" if expires else ""
    return send(
        f"""
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:door@intercom.test>;tag=[pid]reg[call_number]
      To: <sip:door@intercom.test>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>{contact_params}\
{auth_line}{expires_line}
      Max-Forwards: 70""",
        retrans=True,
    )


OK_ECHOES_CONTACT_60 = """  <recv response="200">
    <action>
      <ereg regexp="^[[:space:]]*&lt;sip:door@[^&gt;]*&gt;;expires=60$" search_in="hdr"
            header="Contact:" check_it="true" assign_to="_" />
      <ereg regexp="^[[:space:]]*60$" search_in="hdr" header="Expires:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
"""


def digest_ua(password: str) -> str:
    return f"[authentication username=door password={password}]"


def registrar(**kwargs: Any) -> Sipp:
    kwargs.setdefault("recv_timeout", 10.0)
    return Sipp(SCENARIOS / "registrar_digest.xml", **kwargs)


def test_registrar_digest_accepts_a_correct_ua(tmp_path: Path) -> None:
    """Register, refresh with the same nonce, un-register (challenged again) via ;expires=0."""
    ua = scenario(
        tmp_path,
        "ua_registers",
        register(1)
        + '  <recv response="401" auth="true" />\n'
        + register(2, auth=digest_ua("secret"))
        + OK_ECHOES_CONTACT_60
        + register(3, auth=digest_ua("secret"))
        + OK_ECHOES_CONTACT_60
        + register(4, expires="", contact_params=";expires=0")
        + '  <recv response="401" auth="true" />\n'
        + register(5, expires="", contact_params=";expires=0", auth=digest_ua("secret"))
        + '  <recv response="200" />\n',
    )
    server, client = asyncio.run(run_pair(registrar(), ua))
    both_ok(server, client)
    # Three REGISTERs carried credentials; each was verified, the un-REGISTER was challenged.
    assert server.logs.count("Digest|intercom.test|door|true|true|true") == 3, server.explain()
    assert "challenging again" in server.logs


def test_registrar_digest_password_variable_over_tcp(tmp_path: Path) -> None:
    """-set password works (the default "secret" would be refused) and TCP works."""
    ua = scenario(
        tmp_path,
        "ua_registers_tcp",
        register(1)
        + '  <recv response="401" auth="true" />\n'
        + register(2, auth=digest_ua("hunter2"))
        + OK_ECHOES_CONTACT_60
        + register(3, expires="Expires: 0", auth=digest_ua("hunter2"))
        + '  <recv response="200" />\n',
    )
    server, client = asyncio.run(
        run_pair(registrar(transport="tcp", variables={"password": "hunter2"}), ua)
    )
    both_ok(server, client)
    assert "TCP message received" in server.messages


def test_registrar_digest_rejects_a_wrong_password(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_wrong_password",
        register(1)
        + '  <recv response="401" auth="true" />\n'
        + register(2, auth=digest_ua("wrong"))
        + '  <recv response="403" />\n',
    )
    server, client = asyncio.run(run_pair(registrar(), ua))
    assert client.returncode == 0, client.explain()  # it did get its 403
    assert server.returncode != 0, server.explain()
    assert "FAIL: bad credentials" in server.logs
    assert "Digest|intercom.test|door|true|true|false" in server.logs


def test_registrar_digest_rejects_a_nonce_it_did_not_issue(tmp_path: Path) -> None:
    """A digest that is right for a nonce of the UA's own invention still gets 403."""
    server = registrar()
    uri = f"sip:127.0.0.1:{server.port}"
    nonce, cnonce, nc = "made-up-nonce", "0a4f113b", "00000001"
    ha1 = hashlib.md5(b"door:intercom.test:secret").hexdigest()
    ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    header = (
        f'Authorization: Digest username="door", realm="intercom.test", nonce="{nonce}", '
        f'uri="{uri}", response="{response}", algorithm=MD5, cnonce="{cnonce}", nc={nc}, '
        "qop=auth"
    )
    ua = scenario(
        tmp_path,
        "ua_foreign_nonce",
        register(1)
        + '  <recv response="401" />\n'
        + register(2, auth=header)
        + '  <recv response="403" />\n',
    )
    server_result, client = asyncio.run(run_pair(server, ua))
    assert client.returncode == 0, client.explain()
    assert server_result.returncode != 0, server_result.explain()
    # The digest itself verified: only the nonce check caught it.
    assert "Digest|intercom.test|door|false|true|true" in server_result.logs, (
        server_result.explain()
    )


def test_registrar_digest_fails_when_the_ua_never_unregisters(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_no_unregister",
        register(1)
        + '  <recv response="401" auth="true" />\n'
        + register(2, auth=digest_ua("secret"))
        + '  <recv response="200" />\n',
    )
    server, client = asyncio.run(run_pair(registrar(recv_timeout=2.0), ua))
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()


# registrar_wrong_password.xml


def wrong_password_ua(tmp_path: Path, *, third: bool) -> Path:
    body = (
        register(1)
        + """  <recv response="401" auth="true">
    <action>
      <ereg regexp="nonce=&quot;([^&quot;]*)&quot;" search_in="hdr" header="WWW-Authenticate:"
            check_it="true" assign_to="_,nonce1" />
    </action>
  </recv>
"""
        + register(2, auth=digest_ua("wrong"))
        + """  <recv response="401">
    <action>
      <ereg regexp="nonce=&quot;([^&quot;]*)&quot;" search_in="hdr" header="WWW-Authenticate:"
            check_it="true" assign_to="_,nonce2" />
      <strcmp assign_to="_" variable="nonce1" variable2="nonce2" check_it_inverse="true" />
    </action>
  </recv>
"""
    )
    if third:
        body += register(3, auth=digest_ua("wrong")) + '  <recv response="403" />\n'
    return scenario(tmp_path, "ua_gives_up" if not third else "ua_tries_again", body)


def test_registrar_wrong_password_ua_gives_up(tmp_path: Path) -> None:
    server, client = pair("registrar_wrong_password.xml", wrong_password_ua(tmp_path, third=False))
    both_ok(server, client)
    assert "the UA gave up" in server.logs


def test_registrar_wrong_password_fails_on_a_third_register(tmp_path: Path) -> None:
    server, client = pair("registrar_wrong_password.xml", wrong_password_ua(tmp_path, third=True))
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()
    assert "FAIL: a third REGISTER" in server.logs


# registrar_423.xml


def interval_ua(tmp_path: Path, *, retry_expires: int) -> Path:
    body = (
        register(1, expires="Expires: 60")
        + """  <recv response="423">
    <action>
      <ereg regexp="^[[:space:]]*120$" search_in="hdr" header="Min-Expires:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
"""
        + register(2, expires=f"Expires: {retry_expires}")
    )
    if retry_expires == 120:
        body += (
            """  <recv response="200">
    <action>
      <ereg regexp=";expires=120$" search_in="hdr" header="Contact:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
"""
            + register(3, expires="Expires: 0")
            + '  <recv response="200" />\n'
        )
    else:
        body += '  <recv response="423" />\n'
    return scenario(tmp_path, f"ua_interval_{retry_expires}", body)


def test_registrar_423_ua_retries_with_min_expires(tmp_path: Path) -> None:
    server, client = pair("registrar_423.xml", interval_ua(tmp_path, retry_expires=120))
    both_ok(server, client)


def test_registrar_423_fails_when_the_ua_ignores_min_expires(tmp_path: Path) -> None:
    server, client = pair("registrar_423.xml", interval_ua(tmp_path, retry_expires=60))
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()
    assert "does not ask for 120 seconds" in server.logs


# --------------------------------------------------------------------------------------------
# Call-side companions: the UA calling sipp.
# --------------------------------------------------------------------------------------------


def invite(cseq: int = 1, *, auth: str = "") -> str:
    auth_line = f"\n      {auth}" if auth else ""
    return send_sdp(
        f"""
      INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Door" <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>{auth_line}
      Max-Forwards: 70""",
        retrans=True,
    )


def ack_non_2xx(cseq: int = 1) -> str:
    """ACK for a non-2xx final response: the INVITE's branch, taken from the response's Via."""
    return send(
        f"""
      ACK sip:callee@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: {cseq} ACK
      Max-Forwards: 70"""
    )


def in_dialog(method: str, cseq: int, *, uri: str = "[next_url]", to: str = "[$peer_to]") -> str:
    return send(
        f"""
      {method} {uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Door" <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: {to}
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Max-Forwards: 70""",
        retrans=method != "ACK",
    )


ANSWERED = """  <recv response="200" rrs="true">
    <action>
      <ereg regexp="^[[:space:]]*application/sdp" search_in="hdr" header="Content-Type:"
            check_it="true" assign_to="_" />
      <ereg regexp="^[[:space:]]*(.*)$" search_in="hdr" header="To:" assign_to="_,peer_to" />
    </action>
  </recv>
"""

REPLY_200 = send(f"\n      SIP/2.0 200 OK{REPLY}")


def proxy_ua(tmp_path: Path, password: str, *, full_call: bool) -> Path:
    body = (
        invite(1)
        + '  <recv response="407" auth="true" />\n'
        + ack_non_2xx(1)
        + invite(2, auth=digest_ua(password))
    )
    if full_call:
        body += (
            '  <recv response="100" optional="true" />\n'
            + '  <recv response="180" optional="true" />\n'
            + ANSWERED
            + in_dialog("ACK", 2)
            + '  <pause milliseconds="200" />\n'
            + in_dialog("BYE", 3)
            + '  <recv response="200" />\n'
        )
    else:
        # sipp answers while its digest check runs, and then gets killed: stop after 100.
        body += '  <recv response="100" />\n'
    return scenario(tmp_path, f"ua_proxy_{password}_{full_call}", body)


def proxy_pair(ua: Path, **server_kwargs: Any) -> tuple[SippResult, SippResult]:
    server = Sipp(SCENARIOS / "proxy_407_invite.xml", **server_kwargs)
    # sipp's [authentication] digests "sip:<remote>" unless -auth_uri (it adds "sip:").
    auth_uri = ["-auth_uri", f"callee@127.0.0.1:{server.port}"]
    return asyncio.run(run_pair(server, ua, extra_args=auth_uri))


def test_proxy_407_invite(tmp_path: Path) -> None:
    server, client = proxy_pair(proxy_ua(tmp_path, "secret", full_call=True))
    both_ok(server, client)
    assert "Proxy-Authorization: Digest" in server.messages
    assert "Digest|intercom.test|door|true|true|auth|" in server.logs, server.explain()


def test_proxy_407_invite_password_variable(tmp_path: Path) -> None:
    """With -set password, the right digest for the default "secret" is fatal."""
    ua = proxy_ua(tmp_path, "secret", full_call=False)
    server, _ = proxy_pair(ua, variables={"password": "hunter2"})
    assert server.returncode == -9, server.explain()
    assert "digest response is wrong for password hunter2" in server.stderr


def test_proxy_407_invite_rejects_a_wrong_digest(tmp_path: Path) -> None:
    server, _ = proxy_pair(proxy_ua(tmp_path, "wrong", full_call=False))
    assert server.returncode != 0, server.explain()
    assert "FAIL: Proxy-Authorization digest response is wrong" in server.stderr
    assert "killed by signal 9" in server.explain()


def test_proxy_407_invite_rejects_a_digest_for_another_uri(tmp_path: Path) -> None:
    """Without -auth_uri sipp digests "sip:127.0.0.1:port", not the Request-URI: 403."""
    ua = scenario(
        tmp_path,
        "ua_proxy_wrong_uri",
        invite(1)
        + '  <recv response="407" auth="true" />\n'
        + ack_non_2xx(1)
        + invite(2, auth=digest_ua("secret"))
        + '  <recv response="403" />\n'
        + ack_non_2xx(2),
    )
    server, client = pair("proxy_407_invite.xml", ua)
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()
    assert "FAIL: bad Proxy-Authorization" in server.logs


def test_callee_answer_bye_from_peer(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_hung_up_on",
        invite()
        + '  <recv response="100" />\n'
        + '  <recv response="180" />\n'
        + ANSWERED
        + in_dialog("ACK", 1)
        + """  <recv request="BYE">
    <action>
      <ereg regexp="^BYE sip:door@" search_in="msg" check_it="true" assign_to="_" />
      <ereg regexp="tag=[[:digit:]]+door" search_in="hdr" header="To:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
"""
        + REPLY_200,
    )
    server, client = pair("callee_answer_bye_from_peer.xml", ua)
    both_ok(server, client)


def test_callee_answer_bye_from_ua(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_hangs_up",
        invite()
        + '  <recv response="180" />\n'
        + ANSWERED
        + in_dialog("ACK", 1)
        + '  <pause milliseconds="300" />\n'
        + in_dialog("BYE", 2)
        + '  <recv response="200" />\n',
    )
    server, client = pair("callee_answer_bye_from_ua.xml", ua)
    both_ok(server, client)


def test_callee_answer_bye_from_ua_fails_on_a_bye_outside_the_dialog(tmp_path: Path) -> None:
    ua = scenario(
        tmp_path,
        "ua_hangs_up_wrong_tag",
        invite()
        + '  <recv response="180" />\n'
        + ANSWERED
        + in_dialog("ACK", 1)
        + in_dialog("BYE", 2, to="<sip:callee@[remote_ip]:[remote_port]>;tag=not-the-dialog")
        + '  <recv response="200" />\n',
    )
    server, client = pair("callee_answer_bye_from_ua.xml", ua)
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()


def busy_ua(tmp_path: Path, *, ack: bool) -> Path:
    body = invite() + '  <recv response="100" optional="true" />\n  <recv response="486" />\n'
    if ack:
        body += ack_non_2xx(1)
    return scenario(tmp_path, "ua_busy_ack" if ack else "ua_busy_no_ack", body)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_callee_busy(tmp_path: Path, transport: str) -> None:
    server, client = pair("callee_busy.xml", busy_ua(tmp_path, ack=True), transport=transport)
    both_ok(server, client)


def test_callee_busy_fails_without_ack(tmp_path: Path) -> None:
    server, client = pair("callee_busy.xml", busy_ua(tmp_path, ack=False), recv_timeout=2.0)
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()
    assert "receive timeout" in server.errors


def test_callee_no_answer(tmp_path: Path) -> None:
    cancel = send(
        """
      CANCEL sip:callee@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "Door" <sip:door@intercom.test>;tag=[pid]door[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70"""
    )
    ua = scenario(
        tmp_path,
        "ua_cancels",
        invite()
        + '  <recv response="100" />\n'
        + '  <recv response="180" />\n'
        + '  <pause milliseconds="300" />\n'
        + cancel
        + '  <recv response="200" />\n'
        + """  <recv response="487">
    <action>
      <ereg regexp="^[[:space:]]*1 INVITE" search_in="hdr" header="CSeq:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
"""
        + ack_non_2xx(1),
    )
    server, client = pair("callee_no_answer.xml", ua)
    both_ok(server, client)


def forking_ua(tmp_path: Path, *, bye_order: tuple[str, str]) -> Path:
    def answered(branch: str) -> str:
        return f"""  <recv response="200">
    <action>
      <ereg regexp="^[[:space:]]*(.*tag=fork{branch}-.*)$" search_in="hdr" header="To:"
            check_it="true" assign_to="_,to{branch}" />
      <ereg regexp="&lt;([^&gt;]*)&gt;" search_in="hdr" header="Contact:" check_it="true"
            assign_to="_,uri{branch}" />
    </action>
  </recv>
"""

    def leg(method: str, branch: str, cseq: int) -> str:
        return in_dialog(method, cseq, uri=f"[$uri{branch}]", to=f"[$to{branch}]")

    first, second = bye_order
    body = (
        invite()
        + """  <recv response="180">
    <action>
      <ereg regexp="tag=forkA-" search_in="hdr" header="To:" check_it="true" assign_to="_" />
    </action>
  </recv>
  <recv response="180">
    <action>
      <ereg regexp="tag=forkB-" search_in="hdr" header="To:" check_it="true" assign_to="_" />
    </action>
  </recv>
"""
        + answered("A")
        + leg("ACK", "A", 1)
        + answered("B")
        + leg("ACK", "B", 1)
        + leg("BYE", first, 2)
        + '  <recv response="200" />\n'
        + '  <pause milliseconds="500" />\n'
        + leg("BYE", second, 3)
        + '  <recv response="200" />\n'
    )
    return scenario(tmp_path, f"ua_forked_{first}{second}", body)


def test_forking_two_answers(tmp_path: Path) -> None:
    server, client = pair("forking_two_answers.xml", forking_ua(tmp_path, bye_order=("B", "A")))
    both_ok(server, client)


def test_forking_two_answers_fails_when_the_ua_hangs_up_the_wrong_branch(tmp_path: Path) -> None:
    server, client = pair("forking_two_answers.xml", forking_ua(tmp_path, bye_order=("A", "B")))
    assert client.returncode == 0, client.explain()
    assert server.returncode != 0, server.explain()
    assert "Failed regexp match" in server.errors


# --------------------------------------------------------------------------------------------
# UAC scenarios: sipp probes or calls; the companion is the UA answering.
# --------------------------------------------------------------------------------------------


def options_ua(tmp_path: Path, headers: str) -> Path:
    return scenario(
        tmp_path,
        "ua_answers_options",
        """  <recv request="OPTIONS">
    <action>
      <ereg regexp="^OPTIONS sip:door@" search_in="msg" check_it="true" assign_to="_" />
    </action>
  </recv>
"""
        + send(f"\n      SIP/2.0 200 OK{REPLY_TAGGED}\n{headers}"),
    )


async def probe(ua_scenario: Path) -> tuple[SippResult, SippResult]:
    """Run options_prober.xml against a companion UA; return (prober, companion)."""
    ua = Sipp(ua_scenario, recv_timeout=10.0)
    async with ua:
        prober = Sipp(SCENARIOS / "options_prober.xml", remote=("127.0.0.1", ua.port))
        async with prober:
            prober_result, ua_result = await asyncio.gather(prober.wait(), ua.wait())
    return prober_result, ua_result


def test_options_prober(tmp_path: Path) -> None:
    # Lower-case names and the compact form of Supported must be accepted too.
    headers = """      allow: INVITE, ACK, CANCEL, BYE, OPTIONS
      Accept: application/sdp
      k: replaces"""
    prober, ua = asyncio.run(probe(options_ua(tmp_path, headers)))
    both_ok(prober, ua)


def test_options_prober_fails_without_supported(tmp_path: Path) -> None:
    headers = """      Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
      Accept: application/sdp"""
    prober, ua = asyncio.run(probe(options_ua(tmp_path, headers)))
    assert ua.returncode == 0, ua.explain()
    assert prober.returncode != 0, prober.explain()
    assert "Failed regexp match" in prober.errors


def test_options_prober_fails_when_allow_lacks_bye(tmp_path: Path) -> None:
    headers = """      Allow: INVITE, ACK, CANCEL, OPTIONS
      Accept: application/sdp
      Supported:"""
    prober, ua = asyncio.run(probe(options_ua(tmp_path, headers)))
    assert ua.returncode == 0, ua.explain()
    assert prober.returncode != 0, prober.explain()


def answering_ua(tmp_path: Path, *, provisional: bool) -> Path:
    body = """  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:door@" search_in="msg" check_it="true" assign_to="_" />
      <ereg regexp="^[[:space:]]*application/sdp" search_in="hdr" header="Content-Type:"
            check_it="true" assign_to="_" />
    </action>
  </recv>
"""
    if provisional:
        body += send(f"\n      SIP/2.0 100 Trying{REPLY}")
        body += send(
            f"\n      SIP/2.0 180 Ringing{REPLY_TAGGED}\n"
            "      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>"
        )
    body += send_sdp(
        f"\n      SIP/2.0 200 OK{REPLY_TAGGED}\n"
        "      Contact: <sip:door@[local_ip]:[local_port];transport=[transport]>",
        retrans=True,
    )
    body += (
        """  <recv request="ACK">
    <action>
      <ereg regexp="^ACK sip:door@" search_in="msg" check_it="true" assign_to="_" />
      <ereg regexp="tag=[[:digit:]]+ua" search_in="hdr" header="To:" check_it="true"
            assign_to="_" />
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
    return scenario(tmp_path, "ua_answers" if provisional else "ua_answers_at_once", body)


async def call_ua(
    ua_scenario: Path, caller: str, variables: dict[str, str] | None = None
) -> tuple[SippResult, SippResult]:
    """Run a sipp caller scenario against a companion UA; return (caller, companion)."""
    ua = Sipp(ua_scenario, recv_timeout=10.0)
    async with ua:
        peer = Sipp(SCENARIOS / caller, remote=("127.0.0.1", ua.port), variables=variables)
        async with peer:
            caller_result, ua_result = await asyncio.gather(peer.wait(), ua.wait())
    return caller_result, ua_result


@pytest.mark.parametrize("provisional", [True, False], ids=["100-180-200", "200-only"])
def test_caller_incoming(tmp_path: Path, provisional: bool) -> None:
    ua_scenario = answering_ua(tmp_path, provisional=provisional)
    caller, ua = asyncio.run(call_ua(ua_scenario, "caller_incoming.xml"))
    both_ok(caller, ua)


def rejecting_ua(tmp_path: Path, status: str) -> Path:
    return scenario(
        tmp_path,
        f"ua_rejects_{status.split()[0]}",
        """  <recv request="INVITE">
    <action>
      <ereg regexp="branch=([^;[:space:]]+)" search_in="hdr" header="Via:" assign_to="_,branch" />
    </action>
  </recv>
"""
        + send(f"\n      SIP/2.0 100 Trying{REPLY}")
        + send(f"\n      SIP/2.0 {status}{REPLY_TAGGED}")
        + """  <recv request="ACK">
    <action>
      <!-- The ACK for a non-2xx response belongs to the INVITE transaction. -->
      <ereg regexp="branch=([^;[:space:]]+)" search_in="hdr" header="Via:"
            assign_to="_,ack_branch" />
      <strcmp assign_to="_" variable="branch" variable2="ack_branch" check_it="true" />
      <ereg regexp="tag=[[:digit:]]+ua" search_in="hdr" header="To:" check_it="true"
            assign_to="_" />
    </action>
  </recv>
""",
    )


@pytest.mark.parametrize(
    ("status", "variables"),
    [("403 Forbidden", None), ("486 Busy Here", {"status": "486"})],
    ids=["default-403", "set-486"],
)
def test_caller_incoming_rejected(
    tmp_path: Path, status: str, variables: dict[str, str] | None
) -> None:
    caller, ua = asyncio.run(
        call_ua(rejecting_ua(tmp_path, status), "caller_incoming_rejected.xml", variables)
    )
    both_ok(caller, ua)
    assert f"final status {status.split()[0]}" in caller.logs


def test_caller_incoming_rejected_fails_on_another_status(tmp_path: Path) -> None:
    caller, ua = asyncio.run(
        call_ua(rejecting_ua(tmp_path, "486 Busy Here"), "caller_incoming_rejected.xml")
    )
    assert ua.returncode == 0, ua.explain()
    assert caller.returncode != 0, caller.explain()


# --------------------------------------------------------------------------------------------
# The harness itself.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.name for p in SCENARIO_FILES])
def test_every_scenario_says_what_it_checks(path: Path) -> None:
    ElementTree.parse(path)  # well-formed XML (sipp's own parser is more lenient)
    text = path.read_text()
    assert text.startswith(HEAD), path
    comment = text[len(HEAD) :].lstrip()
    assert comment.startswith(f"<!--\n  {path.name}:"), f"{path.name} needs a header comment"
    assert "Exit status 0 only if" in comment.split("-->")[0]


def test_every_scenario_has_a_validation_test() -> None:
    here = Path(__file__)
    source = "".join(p.read_text() for p in sorted(here.parent.glob(f"{here.stem}*.py")))
    missing = [p.name for p in SCENARIO_FILES if f'"{p.name}"' not in source]
    assert not missing, f"scenarios without a test here: {missing}"


def test_require_sipp_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.access(require_sipp(), os.X_OK)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match=r"sipp not installed: run \./dev\.sh setup"):
        require_sipp()


def test_free_ports() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    media = free_media_port()
    assert media % 2 == 0


def test_a_broken_scenario_is_explained(tmp_path: Path) -> None:
    broken = scenario(tmp_path, "broken", '  <recv request="INVITE">\n')

    async def run() -> SippResult:
        async with Sipp(broken, timeout=5) as peer:
            return await peer.wait()

    result = asyncio.run(run())
    assert result.returncode != 0
    explanation = result.explain()
    assert "sipp exited with" in explanation
    assert "broken.xml" in explanation
    assert "Invalid XML" in explanation


def test_a_silent_peer_times_out_with_a_readable_failure() -> None:
    async def run() -> SippResult:
        async with Sipp(SCENARIOS / "callee_busy.xml", timeout=2) as peer:
            return await peer.wait()

    result = asyncio.run(run())
    assert result.returncode != 0
    assert "timed out" in result.explain()


def test_stop_kills_a_running_sipp() -> None:
    async def run() -> SippResult:
        peer = Sipp(SCENARIOS / "callee_busy.xml", timeout=30)
        await peer.start()
        assert peer.running
        return await peer.stop()

    result = asyncio.run(run())
    assert result.killed
    assert not result.ok  # sipp exits 0 on SIGTERM: `ok` and explain() tell the truth
    assert "the harness killed it" in result.explain()
