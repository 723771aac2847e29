"""Tests for intercom.sip.registration (RFC 3261 §10.2 client, RFC 5626 keepalives)."""

from __future__ import annotations

import hashlib
import logging
import random
import re

import pytest

from intercom import __version__
from intercom.sip.auth import DigestClient
from intercom.sip.core import Address, Ids, TransactionUser
from intercom.sip.events import (
    Event,
    RegistrationFailed,
    RegistrationSucceeded,
    Unregistered,
)
from intercom.sip.message import Request, Response, parse_message
from intercom.sip.registration import (
    Registration,
    RegistrationConfig,
    RegistrationState,
    refresh_delay,
)
from intercom.sip.uri import NameAddr, SipUri

CONTACT = "<sip:door@192.0.2.10:5060;transport=udp>"
VIA = "192.0.2.10:5060;branch=z9hG4bKfake"
CHALLENGE = 'Digest realm="asterisk", nonce="n0nce1", algorithm=MD5, qop="auth"'


class FakeSender:
    def __init__(self) -> None:
        self.requests: list[tuple[Request, TransactionUser]] = []
        self.events: list[Event] = []

    def send_request(
        self, request: Request, tu: TransactionUser, destination: Address | None = None
    ) -> Request:
        self.requests.append((request, tu))
        return request

    def send_ack(self, ack: Request, destination: Address | None = None) -> None:
        raise AssertionError("a registration never ACKs")

    def send_cancel(self, invite: Request, tu: TransactionUser) -> None:
        raise AssertionError("a registration never CANCELs")

    def send_response(self, response: Response) -> None:
        raise AssertionError("a registration never sends responses")

    def emit(self, event: Event) -> None:
        self.events.append(event)

    @property
    def last(self) -> Request:
        return self.requests[-1][0]


class Harness:
    def __init__(self, *, seed: int = 7, password: str = "secret", **config: object) -> None:
        self.sender = FakeSender()
        self.rng = random.Random(seed)
        self.ids = Ids(self.rng)
        self.auth = DigestClient("door", password, cnonce_factory=self.ids.cnonce)
        self.contact = NameAddr.parse(CONTACT)
        settings: dict[str, object] = {"keepalive_interval": None, **config}
        self.config = RegistrationConfig(
            registrar="pbx.example",
            registrar_uri=SipUri.parse("sip:pbx.example"),
            aor=SipUri.parse("sip:door@pbx.example"),
            **settings,  # type: ignore[arg-type]
        )
        self.reg = Registration(
            self.config, sender=self.sender, auth=self.auth, ids=self.ids,
            contact=lambda: self.contact,
        )  # fmt: skip

    def state(self) -> RegistrationState:
        """A call, so that mypy does not narrow the state across steps of a test."""
        return self.reg.state

    def peek_random(self, n: int = 1) -> list[float]:
        """The next n values Ids.random() will return, without consuming them."""
        clone = random.Random()
        clone.setstate(self.rng.getstate())
        return [clone.random() for _ in range(n)]

    def respond(self, status: int, reason: str, *extra: str, request: Request | None = None,
                now: float = 0.0, via: str = VIA) -> None:  # fmt: skip
        req = request if request is not None else self.sender.last
        lines = [
            f"SIP/2.0 {status} {reason}",
            f"Via: SIP/2.0/UDP {via}",
            f"From: {req.headers.get('From')}",
            f"To: {req.headers.get('To')};tag=reg1",
            f"Call-ID: {req.call_id}",
            f"CSeq: {req.headers.get('CSeq')}",
            *extra,
            "Content-Length: 0",
        ]
        response = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert isinstance(response, Response)
        self.reg.on_response(req, response, now)

    def challenge(self, now: float = 0.0, nonce: str = "n0nce1") -> None:
        self.respond(401, "Unauthorized", f"WWW-Authenticate: {CHALLENGE.replace('n0nce1', nonce)}",
                     now=now)  # fmt: skip

    def ok(self, *extra: str, now: float = 0.0, via: str = VIA) -> None:
        self.respond(200, "OK", *extra, now=now, via=via)


def auth_params(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    pairs = re.findall(r'([a-z]+)=(?:"([^"]*)"|([^\s,]+))', value[len("Digest ") :])
    return {k: quoted or bare for k, quoted, bare in pairs}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# -- the REGISTER itself --------------------------------------------------------------------


def test_first_register_headers() -> None:
    h = Harness(display_name="Front Door")
    h.reg.start(0.0)
    assert h.state() is RegistrationState.REGISTERING
    assert len(h.sender.requests) == 1
    request, tu = h.sender.requests[0]
    assert tu is h.reg
    assert request.method == "REGISTER"
    assert str(request.uri) == "sip:pbx.example"
    names = [name for name, _ in request.headers]
    assert names == ["Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Expires",
                     "Allow", "User-Agent"]  # fmt: skip
    headers = request.headers
    assert headers.get("Max-Forwards") == "70"
    assert re.fullmatch(r'"Front Door" <sip:door@pbx\.example>;tag=[0-9a-f]{12}',
                        headers.get("From") or "")  # fmt: skip
    assert headers.get("To") == '"Front Door" <sip:door@pbx.example>'
    assert re.fullmatch(r"[0-9a-f]{24}", request.call_id)
    assert headers.get("CSeq") == "1 REGISTER"
    assert headers.get("Contact") == CONTACT
    assert headers.get("Expires") == "600"
    assert headers.get("Allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
    assert headers.get("User-Agent") == f"intercom/{__version__}"
    assert "Authorization" not in headers
    assert "Via" not in headers  # the endpoint adds it
    assert h.reg.last_status is None and h.reg.granted_expires is None
    assert h.reg.get_timer() is None
    # the request must survive a round trip through the parser once a Via is on it
    request.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc")
    assert isinstance(parse_message(request.encode()), Request)


def test_start_twice_sends_one_register() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.reg.start(1.0)
    assert len(h.sender.requests) == 1


# -- digest, success and refresh ------------------------------------------------------------


def test_challenge_success_and_refresh(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="intercom.sip.registration")
    h = Harness()
    h.reg.start(0.0)
    first = h.sender.last
    h.challenge(now=0.1)
    assert h.state() is RegistrationState.REGISTERING
    assert h.reg.last_status == 401
    assert len(h.sender.requests) == 2
    second = h.sender.last
    assert second.headers.get("CSeq") == "2 REGISTER"
    assert second.call_id == first.call_id
    assert second.headers.get("From") == first.headers.get("From")
    params = auth_params(second.headers.get("Authorization") or "")
    assert params["username"] == "door"
    assert params["realm"] == "asterisk"
    assert params["uri"] == "sip:pbx.example"
    assert params["nc"] == "00000001"
    ha1 = md5("door:asterisk:secret")
    ha2 = md5("REGISTER:sip:pbx.example")
    expected = md5(f"{ha1}:n0nce1:00000001:{params['cnonce']}:auth:{ha2}")
    assert params["response"] == expected

    h.ok(f"Contact: {CONTACT};expires=300", "Expires: 900", now=0.2)
    assert h.state() is RegistrationState.REGISTERED
    assert h.reg.last_status == 200
    assert h.reg.granted_expires == 300
    assert h.sender.events == [RegistrationSucceeded("pbx.example", 300)]
    assert h.reg.get_timer() == pytest.approx(0.2 + 240.0)  # max(300/2, 300-60)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "registered at pbx.example (expires 300)"
    ]

    h.reg.handle_timer(240.0)  # not yet
    assert len(h.sender.requests) == 2
    h.reg.handle_timer(240.2)
    assert len(h.sender.requests) == 3
    third = h.sender.last
    assert third.headers.get("CSeq") == "3 REGISTER"
    assert third.call_id == first.call_id
    assert third.headers.get("From") == first.headers.get("From")
    assert third.headers.get("Expires") == "600"
    preemptive = auth_params(third.headers.get("Authorization") or "")
    assert preemptive["nonce"] == "n0nce1" and preemptive["nc"] == "00000002"
    assert h.state() is RegistrationState.REGISTERED  # still bound while refreshing
    assert h.reg.get_timer() is None

    h.ok(f"Contact: {CONTACT};expires=600", now=241.0)
    assert h.reg.granted_expires == 600
    assert h.reg.get_timer() == pytest.approx(241.0 + 540.0)
    assert h.sender.events[-1] == RegistrationSucceeded("pbx.example", 600)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["registered at pbx.example (expires 300)"]  # the refresh logs at DEBUG
    assert "refreshed at pbx.example (expires 600)" in caplog.messages


def test_stale_preemptive_nonce_is_answered_not_failed() -> None:
    """A restarted registrar forgets our nonce and re-challenges without stale=true."""
    h = Harness()
    h.reg.start(0.0)
    h.challenge()
    h.ok(f"Contact: {CONTACT};expires=300")
    h.reg.refresh_now(10.0)
    assert "Authorization" in h.sender.last.headers  # preemptive, old nonce
    h.challenge(now=10.1, nonce="n0nce2")
    assert h.state() is RegistrationState.REGISTERED
    assert len(h.sender.requests) == 4
    retry = h.sender.last
    assert retry.headers.get("CSeq") == "4 REGISTER"
    assert auth_params(retry.headers.get("Authorization") or "")["nonce"] == "n0nce2"
    h.ok(f"Contact: {CONTACT};expires=300", now=10.2)
    assert [type(e) for e in h.sender.events] == [RegistrationSucceeded] * 2


def test_credentials_are_never_replayed() -> None:
    """A 407 after an answered 401: the Authorization goes again with nc+1 and a new cnonce."""
    h = Harness()
    h.reg.start(0.0)
    h.challenge()
    www = auth_params(h.sender.last.headers.get("Authorization") or "")
    proxy_challenge = CHALLENGE.replace("asterisk", "proxy").replace("n0nce1", "p1")
    h.respond(407, "Proxy Authentication Required", f"Proxy-Authenticate: {proxy_challenge}")
    again = auth_params(h.sender.last.headers.get("Authorization") or "")
    proxy = auth_params(h.sender.last.headers.get("Proxy-Authorization") or "")
    assert (www["nc"], again["nc"], proxy["nc"]) == ("00000001", "00000002", "00000001")
    assert again["nonce"] == www["nonce"] and again["cnonce"] != www["cnonce"]
    assert proxy["realm"] == "proxy"


def test_wrong_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="intercom.sip.registration")
    h = Harness(password="wrong")
    h.reg.start(0.0)
    h.challenge(now=0.1)
    [jitter] = h.peek_random()
    h.challenge(now=0.2)
    assert len(h.sender.requests) == 2
    assert h.state() is RegistrationState.FAILED
    assert h.reg.last_status == 401
    [event] = h.sender.events
    assert isinstance(event, RegistrationFailed)
    assert event.registrar == "pbx.example"
    assert event.status == 401
    assert event.reason == "401 Unauthorized: wrong credentials for realm asterisk"
    assert event.retry_in == pytest.approx(30.0 + 30.0 * jitter)  # 60 s nominal, [30, 60]
    assert 30.0 <= event.retry_in <= 60.0
    assert h.reg.get_timer() == pytest.approx(0.2 + event.retry_in)
    ours = [r for r in caplog.records if r.name == "intercom.sip.registration"]
    assert len(ours) == 1 and ours[0].levelno == logging.WARNING
    assert "401" in ours[0].getMessage() and "asterisk" in ours[0].getMessage()

    h.reg.handle_timer(0.2 + event.retry_in - 0.01)
    assert len(h.sender.requests) == 2  # not hammered
    h.reg.handle_timer(0.2 + event.retry_in)
    assert len(h.sender.requests) == 3
    assert h.state() is RegistrationState.REGISTERING
    assert h.sender.last.headers.get("CSeq") == "3 REGISTER"
    assert "Authorization" not in h.sender.last.headers  # the bad challenge was forgotten


def test_endless_stale_challenges_give_up() -> None:
    h = Harness()
    h.reg.start(0.0)
    stale = CHALLENGE + ", stale=true"
    for _ in range(4):
        h.respond(401, "Unauthorized", f"WWW-Authenticate: {stale}")
    assert len(h.sender.requests) == 4  # the first plus three answers
    assert h.state() is RegistrationState.FAILED
    [event] = h.sender.events
    assert isinstance(event, RegistrationFailed)
    assert event.reason == "401 Unauthorized: challenged too often"


# -- 423, other failures, backoff -----------------------------------------------------------


def test_interval_too_brief() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.respond(423, "Interval Too Brief", "Min-Expires: 1800")
    assert h.state() is RegistrationState.REGISTERING
    assert h.reg.last_status == 423
    assert len(h.sender.requests) == 2
    assert h.sender.last.headers.get("Expires") == "1800"
    assert h.sender.last.headers.get("CSeq") == "2 REGISTER"
    assert h.sender.events == []
    h.ok()  # no Contact, no Expires: the lifetime asked for
    assert h.reg.granted_expires == 1800
    h.reg.handle_timer(1740.0)
    assert h.sender.last.headers.get("Expires") == "1800"  # remembered for refreshes


@pytest.mark.parametrize("extra", [(), ("Min-Expires: 600",), ("Min-Expires: 300",)])
def test_interval_too_brief_without_usable_minimum_fails(extra: tuple[str, ...]) -> None:
    h = Harness()
    h.reg.start(0.0)
    h.respond(423, "Interval Too Brief", *extra)
    assert len(h.sender.requests) == 1
    assert h.state() is RegistrationState.FAILED
    [event] = h.sender.events
    assert isinstance(event, RegistrationFailed)
    assert event.status == 423
    assert 2.5 <= event.retry_in <= 5.0


def test_timeout_backoff_doubles_caps_and_resets() -> None:
    h = Harness()
    now = 0.0
    h.reg.start(now)
    nominal = [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    for expected in nominal:
        [jitter] = h.peek_random()
        h.reg.on_transaction_failed(h.sender.last, "timeout", now + 32.0)
        now += 32.0
        event = h.sender.events[-1]
        assert isinstance(event, RegistrationFailed)
        assert event == RegistrationFailed("pbx.example", None, "timeout", event.retry_in)
        assert event.retry_in == pytest.approx(expected / 2 + expected / 2 * jitter)
        assert expected / 2 <= event.retry_in <= expected
        assert h.state() is RegistrationState.FAILED
        assert h.reg.last_status is None
        timer = h.reg.get_timer()
        assert timer is not None
        assert timer == pytest.approx(now + event.retry_in)
        sent = len(h.sender.requests)
        h.reg.handle_timer(timer)
        now = timer
        assert len(h.sender.requests) == sent + 1
    h.ok(now=now)
    assert h.state() is RegistrationState.REGISTERED
    h.reg.handle_timer(now + 540.0)
    [jitter] = h.peek_random()
    h.reg.on_transaction_failed(h.sender.last, "transport", now + 541.0)
    event = h.sender.events[-1]
    assert isinstance(event, RegistrationFailed) and event.reason == "transport"
    assert event.retry_in == pytest.approx(2.5 + 2.5 * jitter)  # back to 5 s nominal


def test_stale_response_and_unknown_request_are_ignored() -> None:
    h = Harness()
    h.reg.start(0.0)
    first = h.sender.last
    h.reg.refresh_now(1.0)  # supersedes the first REGISTER
    assert len(h.sender.requests) == 2
    h.respond(100, "Trying")
    h.respond(403, "Forbidden", request=first)
    h.reg.on_transaction_failed(first, "timeout", 2.0)
    assert h.state() is RegistrationState.REGISTERING
    assert h.sender.events == []
    h.respond(403, "Forbidden")
    assert h.state() is RegistrationState.FAILED
    event = h.sender.events[-1]
    assert isinstance(event, RegistrationFailed)
    assert (event.status, event.reason) == (403, "403 Forbidden")
    assert 2.5 <= event.retry_in <= 5.0


def test_retry_after_is_honoured() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.respond(503, "Service Unavailable", "Retry-After: 120 (maintenance);duration=60", now=1.0)
    [event] = h.sender.events
    assert event == RegistrationFailed("pbx.example", 503, "503 Service Unavailable", 120.0)
    assert h.reg.get_timer() == 121.0
    h.reg.handle_timer(120.9)
    assert len(h.sender.requests) == 1
    h.reg.handle_timer(121.0)
    assert len(h.sender.requests) == 2


def test_refresh_failure_while_registered_goes_failed_then_recovers() -> None:
    h = Harness(keepalive_interval=25.0)
    h.reg.start(0.0)
    h.ok("Expires: 600")
    h.reg.handle_timer(540.0)
    h.reg.on_transaction_failed(h.sender.last, "timeout", 572.0)
    assert h.state() is RegistrationState.FAILED
    assert h.reg.take_keepalive() is False
    timer = h.reg.get_timer()
    assert timer is not None and 574.5 <= timer <= 577.0  # no keepalive deadline any more
    h.reg.handle_timer(timer)
    assert h.state() is RegistrationState.REGISTERING
    h.ok("Expires: 600", now=timer)
    assert h.state() is RegistrationState.REGISTERED


def test_refresh_now_from_failed_sends_at_once() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.respond(500, "Server Internal Error")
    assert h.state() is RegistrationState.FAILED
    h.reg.refresh_now(1.0)
    assert h.state() is RegistrationState.REGISTERING
    assert len(h.sender.requests) == 2
    assert h.reg.get_timer() is None


# -- granted lifetime -----------------------------------------------------------------------


def test_expires_header_when_our_contact_has_no_param() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok(
        "Contact: <sip:door@198.51.100.7:5060>;expires=60",  # another binding of the AOR
        f"Contact: {CONTACT}",
        "Expires: 450",
    )
    assert h.reg.granted_expires == 450
    assert h.reg.get_timer() == pytest.approx(390.0)


def test_contact_matching_ignores_params_and_host_case() -> None:
    h = Harness()
    h.contact = NameAddr.parse("<sip:door@Door.Example>")
    h.reg.start(0.0)
    h.ok(
        "Contact: <sip:other@door.example:5060>;expires=30",
        "Contact: <sip:door@door.example:5060;ob>;expires=120",
    )
    assert h.reg.granted_expires == 120
    assert h.reg.get_timer() == pytest.approx(60.0)


REWRITTEN = "<sip:door@203.0.113.9:40000;transport=udp>"  # fix_nated_contact, rewrite_contact


def test_rewritten_contact_is_matched_by_instance() -> None:
    h = Harness(instance_id="urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    h.reg.start(0.0)
    instance = '+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'
    assert h.sender.last.headers.get("Contact") == f"{CONTACT};{instance};reg-id=1"
    h.ok(
        "Contact: <sip:door@198.51.100.7:5060>;expires=3600",  # another phone of the AOR
        f"Contact: {REWRITTEN};expires=120;{instance.upper()};reg-id=1",
    )
    assert h.reg.granted_expires == 120
    assert h.reg.get_timer() == pytest.approx(60.0)


def test_the_only_rewritten_contact_gives_the_lifetime() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok(f"Contact: {REWRITTEN};expires=120")
    assert h.reg.granted_expires == 120
    assert h.reg.get_timer() == pytest.approx(60.0)


def test_stream_source_port_is_not_a_nat() -> None:
    h = Harness()
    h.contact = NameAddr.parse("<sip:door@192.0.2.10:5060;transport=tcp>")
    h.reg.start(0.0)
    h.ok("Expires: 600", via="192.0.2.10:5060;rport=51234;branch=z9hG4bKfake")
    assert len(h.sender.requests) == 1 and h.reg.public_address is None
    h.reg.refresh_now(1.0)
    h.ok("Expires: 600", via="192.0.2.10:5060;rport=51234;received=203.0.113.9;branch=z9hG4bKx")
    assert h.reg.public_address == ("203.0.113.9", 51234)
    assert h.sender.last.headers.get("Contact") == (
        "<sip:door@203.0.113.9:51234;transport=tcp>, "
        "<sip:door@192.0.2.10:5060;transport=tcp>;expires=0"
    )


def test_granted_zero_is_a_failure() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok(f"Contact: {CONTACT};expires=0")
    assert h.state() is RegistrationState.FAILED
    [event] = h.sender.events
    assert isinstance(event, RegistrationFailed)
    assert event.reason == "200 OK: the registrar kept no binding"


@pytest.mark.parametrize(
    ("granted", "delay"),
    [(3600, 3540.0), (600, 540.0), (300, 240.0), (120, 60.0), (60, 30.0), (8, 3.0), (4, 1.0)],
)
def test_refresh_delay(granted: int, delay: float) -> None:
    assert refresh_delay(granted) == delay


def test_new_contact_removes_old_binding() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok("Expires: 600")
    h.contact = NameAddr.parse("<sip:door@203.0.113.5:5060;transport=udp>")
    h.reg.refresh_now(10.0)
    assert h.sender.last.headers.get("Contact") == (
        f"<sip:door@203.0.113.5:5060;transport=udp>, {CONTACT};expires=0"
    )
    h.ok("Contact: <sip:door@203.0.113.5:5060;transport=udp>;expires=600", now=10.1)
    h.reg.handle_timer(550.1)
    assert h.sender.last.headers.get("Contact") == "<sip:door@203.0.113.5:5060;transport=udp>"


# -- keepalives -----------------------------------------------------------------------------


def test_keepalives_while_registered_only() -> None:
    h = Harness(keepalive_interval=25.0)
    h.reg.start(0.0)
    assert h.reg.get_timer() is None
    h.reg.handle_timer(100.0)
    assert h.reg.take_keepalive() is False  # not registered yet
    [j1] = h.peek_random()
    h.ok("Expires: 600", now=1.0)
    first = 1.0 + 25.0 * (0.8 + 0.2 * j1)
    assert 21.0 <= first <= 26.0
    assert h.reg.get_timer() == pytest.approx(first)
    h.reg.handle_timer(first - 0.01)
    assert h.reg.take_keepalive() is False
    [j2] = h.peek_random()
    h.reg.handle_timer(first)
    assert h.reg.take_keepalive() is True
    assert h.reg.take_keepalive() is False  # once per due keepalive
    second = first + 25.0 * (0.8 + 0.2 * j2)
    assert h.reg.get_timer() == pytest.approx(second)
    h.reg.handle_timer(second)
    assert h.reg.take_keepalive() is True
    h.reg.handle_timer(h.reg.get_timer() or 0.0)  # due but not taken ...
    h.reg.stop(80.0)  # ... and then not registered any more
    assert h.reg.take_keepalive() is False
    assert h.reg.get_timer() is None
    h.reg.handle_timer(1000.0)
    assert h.reg.take_keepalive() is False


def test_keepalives_off() -> None:
    h = Harness(keepalive_interval=None)
    h.reg.start(0.0)
    h.ok("Expires: 600")
    assert h.reg.get_timer() == 540.0
    h.reg.handle_timer(539.0)
    assert h.reg.take_keepalive() is False


# -- stop -----------------------------------------------------------------------------------


def test_stop_sends_expires_zero(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intercom.sip.registration")
    h = Harness()
    h.reg.start(0.0)
    h.challenge()
    h.ok(f"Contact: {CONTACT};expires=600")
    h.contact = NameAddr.parse("<sip:door@203.0.113.5:5060>")  # the binding is the old one
    h.reg.stop(5.0)
    assert h.state() is RegistrationState.UNREGISTERING
    request = h.sender.last
    assert request.headers.get("CSeq") == "3 REGISTER"
    assert request.call_id == h.sender.requests[0][0].call_id
    assert request.headers.get("Expires") == "0"
    assert request.headers.get("Contact") == f"{CONTACT};expires=0"
    assert "Authorization" in request.headers
    assert h.reg.get_timer() is None
    h.ok(now=5.1)
    assert h.state() is RegistrationState.UNREGISTERED
    assert h.reg.granted_expires is None
    assert h.sender.events[-1] == Unregistered("pbx.example")
    assert "unregistered from pbx.example" in caplog.messages
    h.reg.stop(6.0)
    assert len(h.sender.requests) == 3 and len(h.sender.events) == 2


def test_stop_answers_one_challenge_then_gives_up() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok("Expires: 600")
    h.reg.stop(1.0)
    h.challenge(now=1.1)
    assert h.state() is RegistrationState.UNREGISTERING
    assert h.sender.last.headers.get("CSeq") == "3 REGISTER"
    assert h.sender.last.headers.get("Expires") == "0"
    h.challenge(now=1.2)  # the password is wrong after all
    assert h.state() is RegistrationState.UNREGISTERED
    assert h.sender.events[-1] == Unregistered("pbx.example")
    assert len(h.sender.requests) == 3


def test_stop_timeout_still_unregisters() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.reg.stop(0.5)  # while the REGISTER is in flight: it may have been accepted
    assert h.sender.last.headers.get("Expires") == "0"
    h.respond(200, "OK", request=h.sender.requests[0][0])  # late answer to the first: ignored
    assert h.state() is RegistrationState.UNREGISTERING
    h.reg.on_transaction_failed(h.sender.last, "timeout", 33.0)
    assert h.state() is RegistrationState.UNREGISTERED
    assert h.sender.events == [Unregistered("pbx.example")]


def test_stop_before_registering() -> None:
    h = Harness()
    h.reg.stop(0.0)
    assert h.state() is RegistrationState.UNREGISTERED
    assert h.sender.requests == []
    assert h.sender.events == [Unregistered("pbx.example")]
    assert h.reg.get_timer() is None


def test_stop_after_failure_with_nothing_bound() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.respond(404, "Not Found")
    h.reg.stop(1.0)
    assert len(h.sender.requests) == 1
    assert h.state() is RegistrationState.UNREGISTERED
    assert h.sender.events[-1] == Unregistered("pbx.example")
    assert h.reg.get_timer() is None


def test_stop_after_failed_refresh_removes_live_binding() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok("Expires: 600")
    h.reg.handle_timer(540.0)
    h.respond(500, "Server Internal Error", now=540.1)
    h.reg.stop(541.0)  # the binding may live until 600
    assert h.state() is RegistrationState.UNREGISTERING
    assert h.sender.last.headers.get("Expires") == "0"
    assert h.sender.last.headers.get("CSeq") == "3 REGISTER"


def test_start_after_stop_keeps_call_id_and_counts_on() -> None:
    h = Harness()
    h.reg.start(0.0)
    h.ok("Expires: 600")
    h.reg.stop(1.0)
    h.ok(now=1.1)
    h.reg.start(2.0)
    assert h.state() is RegistrationState.REGISTERING
    assert h.sender.last.headers.get("CSeq") == "3 REGISTER"
    assert h.sender.last.call_id == h.sender.requests[0][0].call_id
    assert h.sender.last.headers.get("Expires") == "600"
