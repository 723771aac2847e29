"""The incoming-call policy: trusted sources, allowed callers, P-Asserted-Identity precedence."""

from __future__ import annotations

import ipaddress

import pytest

from intercom.app.policy import (
    AllowedCaller,
    CallPolicy,
    Verdict,
    parse_networks,
)
from intercom.sip.events import IncomingCallReceived
from intercom.sip.uri import parse_uri

# ---- addresses and networks ------------------------------------------------------------------


def test_parse_networks_addresses_and_cidr():
    assert parse_networks(["192.0.2.7", "10.0.0.0/8", "2001:db8::/32", " [2001:db8::1] "]) == (
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("2001:db8::1/128"),
    )
    assert parse_networks(["10.1.2.3/8"]) == (ipaddress.ip_network("10.0.0.0/8"),)  # host bits
    assert parse_networks([]) == ()


@pytest.mark.parametrize("entry", ["pbx.example", "10.0.0.0/33", "", "1.2.3.4:5060"])
def test_parse_networks_names_the_bad_entry(entry):
    with pytest.raises(ValueError, match=f"^{entry!r} is not an IP address or network$"):
        parse_networks(["10.0.0.1", entry])


# ---- allowed-caller entries ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice", AllowedCaller("alice")),
        (" alice ", AllowedCaller("alice")),
        ("alice@PBX.example", AllowedCaller("alice", "pbx.example")),
        ("sip:alice@pbx.example", AllowedCaller("alice", "pbx.example")),
        ("sips:alice@pbx.example:5071", AllowedCaller("alice", "pbx.example", 5071)),
        ("sip:al%69ce@pbx.example", AllowedCaller("alice", "pbx.example")),
        ("tel:+4930123456", AllowedCaller("+4930123456", tel=True)),
        ("+4930123456", AllowedCaller("+4930123456")),
    ],
)
def test_allowed_caller_parse(text, expected):
    assert AllowedCaller.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an allowed caller entry is empty"),
        ("sip:pbx.example", "allowed caller 'sip:pbx.example' names no user"),
        ("<sip:alice@pbx>", "is not a user name or SIP URI"),
        ("alice smith", "is not a user name or SIP URI"),
        ("alice@", "is not a user name or SIP URI"),
        ("tel:", "allowed caller 'tel:' has no number"),
    ],
)
def test_allowed_caller_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        AllowedCaller.parse(text)


@pytest.mark.parametrize(
    ("entry", "uri", "matches"),
    [
        ("alice", "sip:alice@pbx.example", True),  # at the home domain
        ("alice", "sip:alice@PBX.example;transport=tcp", True),
        ("alice", "sip:alice@elsewhere.example", False),  # a bare user: the home domain only
        ("alice", "sip:alice@192.0.2.10", True),  # the server's resolved address is home too
        ("alice", "sip:alice@192.0.2.11", False),
        ("alice", "sip:Alice@pbx.example", False),  # RFC 3261 §19.1.4: user is case-sensitive
        ("alice", "sip:al%69ce@pbx.example", True),  # ... after undoing escapes
        ("alice", "sip:bob@pbx.example", False),
        ("alice", "sip:pbx.example", False),
        ("alice@pbx.example", "sip:alice@PBX.Example", True),  # host is not
        ("alice@pbx.example", "sips:alice@pbx.example", True),
        ("alice@pbx.example", "sip:alice@evil.example", False),
        ("alice@pbx.example", "sip:alice@pbx.example:5070", True),  # no port: any port
        ("sip:alice@pbx.example:5070", "sip:alice@pbx.example:5070", True),
        ("sip:alice@pbx.example:5070", "sip:alice@pbx.example", False),
        ("tel:+4930123456", "tel:+4930123456", True),
        ("tel:+4930123456", "tel:+4930123456;phone-context=x", True),
        ("tel:+4930123456", "sip:+4930123456@pbx.example", False),  # tel: entries: tel only
        ("+4930123456", "tel:+4930123456", True),
        ("+4930123456", "sip:+4930123456@pbx.example;user=phone", True),
        ("+4930123456", "sip:+4930123456@evil.example;user=phone", False),
        ("alice@pbx.example", "tel:+4930123456", False),
        ("alice", "mailto:alice@pbx.example", False),
    ],
)
def test_allowed_caller_matches(entry, uri, matches):
    home = policy().is_home  # pbx.example, and the server's addresses
    assert AllowedCaller.parse(entry).matches(parse_uri(uri), home) is matches


def test_a_bare_user_matches_no_sip_uri_without_a_home_domain():
    assert not AllowedCaller.parse("alice").matches(parse_uri("sip:alice@pbx.example"))
    assert AllowedCaller.parse("+4930123456").matches(parse_uri("tel:+4930123456"))


def test_allowed_caller_str():
    assert [str(AllowedCaller.parse(t)) for t in ("alice", "sip:a@H:5", "tel:+1")] == [
        "alice",
        "a@h:5",
        "tel:+1",
    ]


# ---- the policy ------------------------------------------------------------------------------


def policy(allowed=("alice@pbx.example",), trusted=("10.0.0.0/24",)) -> CallPolicy:
    callers = [AllowedCaller.parse(entry) for entry in allowed]
    result = CallPolicy(callers, parse_networks(trusted), home_domains=["PBX.example"])
    result.set_server_addresses(["192.0.2.10", "2001:db8::10"])
    return result


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("192.0.2.10", True),  # the server
        ("2001:db8::10", True),
        ("[2001:db8::10]", True),
        ("::ffff:192.0.2.10", True),  # the server through a dual-stack socket
        ("10.0.0.99", True),  # INTERCOM_TRUSTED_HOSTS
        ("10.0.1.1", False),
        ("192.0.2.11", False),
        ("203.0.113.5", False),
        ("pbx.example", False),  # never trust a name
        ("", False),
    ],
)
def test_trusted_source(host, trusted):
    assert policy().is_trusted_source(host) is trusted


def test_server_addresses_are_replaced_and_names_ignored():
    p = policy(trusted=())
    p.set_server_addresses(["198.51.100.1", "pbx.example"])
    assert p.is_server("198.51.100.1") and not p.is_server("pbx.example")
    assert p.is_trusted_source("198.51.100.1")
    assert not p.is_trusted_source("192.0.2.10")  # the old address is no longer trusted
    p.set_server_addresses([])
    assert not p.is_trusted_source("198.51.100.1")


@pytest.mark.parametrize(
    ("caller", "pai", "allowed"),
    [
        ('"Alice" <sip:alice@pbx.example>;tag=a1', None, True),
        ("sip:alice@pbx.example;tag=a1", None, True),
        ("<sip:mallory@pbx.example>;tag=m", None, False),
        # P-Asserted-Identity present: it alone counts (RFC 3325 §9.1)
        ("<sip:mallory@pbx.example>;tag=m", "<sip:alice@pbx.example>", True),
        ("<sip:alice@pbx.example>;tag=a", "<sip:mallory@pbx.example>", False),
        ("<sip:alice@pbx.example>;tag=a", "<tel:+1555>, <sip:alice@pbx.example>", True),
        ("<sip:alice@pbx.example>;tag=a", "garbage<", False),  # unreadable: no fall back
        ("<sip:alice@pbx.example>;tag=a", "", False),
        # a From is one value: a list smuggling an allowed identity is malformed
        ("<sip:mallory@x>, <sip:alice@pbx.example>", None, False),
        ("", None, False),
    ],
)
def test_allowed_caller_identity(caller, pai, allowed):
    assert policy().is_allowed_caller(caller, pai) is allowed


def test_empty_allow_list_refuses_everyone():
    assert not policy(allowed=()).is_allowed_caller("<sip:alice@pbx.example>", None)


def test_bad_allow_list_entry_never_reaches_a_policy():
    with pytest.raises(ValueError, match="names no user"):
        CallPolicy([AllowedCaller.parse("sip:pbx.example")], ())


def invite(source: str, caller: str = "<sip:alice@pbx.example>;tag=1", pai=None):
    return IncomingCallReceived("c1", caller, pai, source, 5060, None)


def test_decide():
    p = policy()
    forged = invite("203.0.113.5")
    assert p.decide(forged) == Verdict(
        False, 403, "untrusted source 203.0.113.5", "<sip:alice@pbx.example>;tag=1"
    )
    assert p.decide(invite("192.0.2.10")) == Verdict(
        True, 200, "allowed", "<sip:alice@pbx.example>;tag=1"
    )
    assert p.decide(invite("192.0.2.10", "<sip:bob@pbx.example>;tag=2")) == Verdict(
        False, 403, "caller not allowed", "<sip:bob@pbx.example>;tag=2"
    )
    assert p.decide(invite("192.0.2.10", pai="<sip:bob@pbx.example>")) == Verdict(
        False, 403, "asserted identity not allowed", "<sip:bob@pbx.example>"
    )
    # the source check comes first, whatever the identity claims
    assert not p.decide(invite("203.0.113.5", pai="<sip:alice@pbx.example>")).allowed


def test_asserted_identity_is_believed_only_from_the_server():
    """RFC 3325 §5: only the trust domain's own proxy may assert. A host of
    INTERCOM_TRUSTED_HOSTS may call in, but what it asserts is ignored: From decides."""
    p = policy()
    mallory = "<sip:mallory@pbx.example>;tag=m"
    alice = "<sip:alice@pbx.example>"
    assert p.decide(invite("192.0.2.10", mallory, pai=alice)).allowed  # the server vouches
    from_trusted_host = p.decide(invite("10.0.0.5", mallory, pai=alice))
    assert from_trusted_host == Verdict(False, 403, "caller not allowed", mallory)
    # ... and cannot take an allowed caller's call away by asserting someone else either
    assert p.decide(invite("10.0.0.5", alice + ";tag=a", pai="<sip:bob@x>")).allowed


def test_the_outbound_proxy_and_the_server_vouch_alike():
    p = policy()
    p.set_server_addresses(["192.0.2.10", "198.51.100.7"])  # server and outbound proxy
    mallory = "<sip:mallory@pbx.example>;tag=m"
    assert p.decide(invite("198.51.100.7", mallory, pai="<sip:alice@pbx.example>")).allowed
