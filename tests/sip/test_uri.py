"""Tests for intercom.sip.uri: SIP URIs (RFC 3261 §19.1), name-addr (§20.10), Via (§20.42)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from intercom.sip.errors import RemoteProtocolError
from intercom.sip.uri import (
    NameAddr,
    OtherUri,
    SipUri,
    Via,
    format_host,
    parse_host_port,
    parse_name_addr_list,
    parse_params,
    parse_uint,
    parse_uri,
)


def error_of(func: object, *args: str) -> RemoteProtocolError:
    assert callable(func)
    with pytest.raises(RemoteProtocolError) as info:
        func(*args)
    assert info.value.status_hint == 400
    return info.value


# ---------------------------------------------------------------------------------------------
# SIP URIs


SIP_URIS = [
    # text, (scheme, user, password, host, port, params, headers), canonical str
    ("sip:alice@example.com",
     ("sip", "alice", None, "example.com", None, {}, ()), "sip:alice@example.com"),
    ("sip:example.com", ("sip", None, None, "example.com", None, {}, ()), "sip:example.com"),
    ("sips:alice:secret@example.com:5061",
     ("sips", "alice", "secret", "example.com", 5061, {}, ()),
     "sips:alice:secret@example.com:5061"),
    ("sip:alice:@example.com",
     ("sip", "alice", "", "example.com", None, {}, ()), "sip:alice:@example.com"),
    ("SIP:Bob@Example.COM", ("sip", "Bob", None, "Example.COM", None, {}, ()),
     "sip:Bob@Example.COM"),
    ("sip:192.0.2.1:5060", ("sip", None, None, "192.0.2.1", 5060, {}, ()), "sip:192.0.2.1:5060"),
    ("sip:[2001:db8::1]", ("sip", None, None, "2001:db8::1", None, {}, ()), "sip:[2001:db8::1]"),
    ("sip:bob@[2001:DB8::1]:5070;maddr=[2001:db8::2]",
     ("sip", "bob", None, "2001:DB8::1", 5070, {"maddr": "[2001:db8::2]"}, ()),
     "sip:bob@[2001:DB8::1]:5070;maddr=[2001:db8::2]"),
    ("sip:alice@example.com;Transport=TCP;LR;b=2;a=1",
     ("sip", "alice", None, "example.com", None,
      {"transport": "TCP", "lr": None, "b": "2", "a": "1"}, ()),
     "sip:alice@example.com;transport=TCP;lr;b=2;a=1"),
    ("sip:alice@example.com;lr?Subject=hi&Priority=urgent",
     ("sip", "alice", None, "example.com", None, {"lr": None},
      (("Subject", "hi"), ("Priority", "urgent"))),
     "sip:alice@example.com;lr?Subject=hi&Priority=urgent"),
    ("sip:user;par=u%40example.net@example.com",
     ("sip", "user;par=u%40example.net", None, "example.com", None, {}, ()),
     "sip:user;par=u%40example.net@example.com"),
    ("sip:%61lice@example.com;%6C%72",
     ("sip", "%61lice", None, "example.com", None, {"%6c%72": None}, ()),
     "sip:%61lice@example.com;%6c%72"),
    ("sip:+1-212-555-1212:1234@gateway.com;user=phone",
     ("sip", "+1-212-555-1212", "1234", "gateway.com", None, {"user": "phone"}, ()),
     "sip:+1-212-555-1212:1234@gateway.com;user=phone"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fields", "canonical"), SIP_URIS, ids=[u[0] for u in SIP_URIS])
def test_sip_uri_parse_and_str(text: str, fields: tuple[object, ...], canonical: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    scheme, user, password, host, port, params, headers = fields
    assert uri.scheme == scheme
    assert uri.user == user
    assert uri.password == password
    assert uri.host == host
    assert uri.port == port
    assert dict(uri.params) == params
    assert list(uri.params) == list(params)  # order is kept
    assert uri.headers == headers
    assert str(uri) == canonical
    assert parse_uri(str(uri)) == uri


def test_sip_uri_properties_and_builders() -> None:
    uri = SipUri.parse("sip:alice@[2001:db8::1]:5062;transport=TLS;lr")
    assert uri.transport == "tls"
    assert uri.hostport == "[2001:db8::1]:5062"
    assert SipUri.parse("sip:h").transport is None
    assert SipUri.parse("sip:h;transport").transport is None
    added = uri.with_params(ob=None, transport="tcp")
    assert str(added) == "sip:alice@[2001:db8::1]:5062;transport=tcp;lr;ob"
    assert str(added.without_params("lr", "ob")) == "sip:alice@[2001:db8::1]:5062;transport=tcp"
    assert str(uri) == "sip:alice@[2001:db8::1]:5062;transport=TLS;lr"  # frozen: unchanged
    assert SipUri("example.com") == SipUri.parse("sip:example.com")
    assert str(SipUri("2001:db8::5", user="u", port=5060)) == "sip:u@[2001:db8::5]:5060"


@pytest.mark.parametrize(
    ("text", "scheme", "rest"),
    [
        ("tel:+1-201-555-0123;phone-context=example.com", "tel",
         "+1-201-555-0123;phone-context=example.com"),
        ("TEL:911", "tel", "911"),
        ("urn:service:sos", "urn", "service:sos"),
        ("mailto:alice@example.com", "mailto", "alice@example.com"),
        ("soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"),
        ("http://www.example.com", "http", "//www.example.com"),
    ],
)  # fmt: skip
def test_other_uris_are_opaque(text: str, scheme: str, rest: str) -> None:
    uri = parse_uri(text)
    assert uri == OtherUri(scheme, rest)
    assert str(uri) == f"{scheme}:{rest}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bad URI ''"),
        ("example.com", "bad URI 'example.com'"),
        ("sip:", "bad URI 'sip:'"),
        ("1sip:a@b", "bad URI '1sip:a@b'"),
        ("sip:a b@c", "bad URI 'sip:a b@c'"),
        ("sip:alice@example.com\r", "bad URI 'sip:alice@example.com\\r'"),
        ("sip:@example.com", "empty user part in 'sip:@example.com'"),
        ("sip:alice@", "bad host in URI: ''"),
        ("sip:alice@exa_mple.com", "bad host in URI: 'exa_mple.com'"),
        ("sip:example.com:0", "bad port in URI: 'example.com:0'"),
        ("sip:example.com:65536", "bad port in URI: 'example.com:65536'"),
        ("sip:example.com:", "bad port in URI: 'example.com:'"),
        ("sip:example.com:5x", "bad port in URI: 'example.com:5x'"),
        ("sip:example.com:\u00b2", "bad port in URI: 'example.com:\u00b2'"),
        ("sip:example.com:\u0665", "bad port in URI: 'example.com:\u0665'"),
        ("sip:2001:db8::10", "bad port in URI: '2001:db8::10'"),
        ("sip:[2001:db8::1", "bad IPv6 reference in URI: '[2001:db8::1'"),
        ("sip:[example.com]", "bad IPv6 reference in URI: '[example.com]'"),
        ("sip:[::1]5060", "bad port in URI: '[::1]5060'"),
        ("sip:host;=x", "bad parameter '=x' in URI"),
        ("sip:host;a;;b", "bad parameter '' in URI"),
    ],
)
def test_bad_uris(text: str, message: str) -> None:
    assert str(error_of(parse_uri, text)) == message


def test_huge_port_is_a_protocol_error_not_a_value_error() -> None:
    """int() refuses strings of more than 4300 digits with ValueError."""
    error = error_of(parse_uri, "sip:example.com:" + "9" * 5000)
    assert str(error).startswith("bad port in URI: 'example.com:999")
    assert parse_uri("sip:example.com:" + "0" * 5000 + "5060") == SipUri("example.com", port=5060)


def test_sip_uri_parse_refuses_other_schemes() -> None:
    assert str(error_of(SipUri.parse, "tel:123")) == "not a SIP URI: 'tel:123'"


# ---------------------------------------------------------------------------------------------
# Numbers, parameters, hosts


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("0", 10, 0), ("0068", 255, 68), ("255", 255, 255), ("256", 255, None), ("", 9, None),
     ("-1", 9, None), ("+1", 9, None), (" 1", 9, None), ("1 ", 9, None), ("\u00b2", 9, None),
     ("\u0661", 9, None), ("1\n", 9, None), ("9" * 5000, 2**31, None),
     ("0" * 5000 + "7", 9, 7), ("2147483647", 2**31 - 1, 2**31 - 1),
     ("2147483648", 2**31 - 1, None)],
)  # fmt: skip
def test_parse_uint(text: str, limit: int, expected: int | None) -> None:
    assert parse_uint(text, limit) == expected


def test_parse_params() -> None:
    assert parse_params(" Tag = abc ; LR ; q=0.5;x=\"a;b\"", "header") == {
        "tag": "abc", "lr": None, "q": "0.5", "x": '"a;b"',
    }  # fmt: skip
    assert parse_params("", "header") == {}
    assert parse_params("  ", "header") == {}
    assert list(parse_params("b;a;c", "x")) == ["b", "a", "c"]
    assert str(error_of(parse_params, "a;b c", "Via")) == "bad parameter 'b c' in Via"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("example.com", ("example.com", None)), ("example.com:5060", ("example.com", 5060)),
     ("[::1]", ("::1", None)), ("[::1]:5061", ("::1", 5061)), ("10.0.0.1:1", ("10.0.0.1", 1))],
)  # fmt: skip
def test_parse_host_port(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_host_port(text, "test") == expected


def test_format_host() -> None:
    assert format_host("::1") == "[::1]"
    assert format_host("example.com") == "example.com"


# ---------------------------------------------------------------------------------------------
# name-addr / addr-spec


NAME_ADDRS = [
    # text, display name, uri, header params, canonical str
    ('"Alice" <sip:alice@example.com>;tag=1928301774', "Alice", "sip:alice@example.com",
     {"tag": "1928301774"}, '"Alice" <sip:alice@example.com>;tag=1928301774'),
    ('"Mr. \\"J\\" \\\\ User" <sip:j@example.com>', 'Mr. "J" \\ User', "sip:j@example.com",
     {}, '"Mr. \\"J\\" \\\\ User" <sip:j@example.com>'),
    ('"a <b>, c" <sip:x@y>', "a <b>, c", "sip:x@y", {}, '"a <b>, c" <sip:x@y>'),
    ("Bob <sip:bob@example.com;transport=tcp>;tag=a6c85cf", "Bob",
     "sip:bob@example.com;transport=tcp", {"tag": "a6c85cf"},
     '"Bob" <sip:bob@example.com;transport=tcp>;tag=a6c85cf'),
    ("  Bob   Q.   Smith   <sip:bob@example.com>", "Bob Q. Smith", "sip:bob@example.com", {},
     '"Bob Q. Smith" <sip:bob@example.com>'),
    ("caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com",
     {"tag": "323"}, '"caller" <sip:caller@example.com>;tag=323'),
    ("<sip:bob@example.com>;tag=x", None, "sip:bob@example.com", {"tag": "x"},
     "<sip:bob@example.com>;tag=x"),
    ('"" <sip:bob@example.com>', "", "sip:bob@example.com", {}, "<sip:bob@example.com>"),
    ("sip:bob@example.com;tag=x;lr", None, "sip:bob@example.com", {"tag": "x", "lr": None},
     "<sip:bob@example.com>;tag=x;lr"),
    ("sip:bob@example.com ; tag = x ", None, "sip:bob@example.com", {"tag": "x"},
     "<sip:bob@example.com>;tag=x"),
    ("<sip:proxy.example.com;lr>", None, "sip:proxy.example.com;lr", {},
     "<sip:proxy.example.com;lr>"),
    ("<sip:a@b?Route=%3Csip:c%3E>;expires=60", None, "sip:a@b?Route=%3Csip:c%3E",
     {"expires": "60"}, "<sip:a@b?Route=%3Csip:c%3E>;expires=60"),
    ("<tel:+15551234>", None, "tel:+15551234", {}, "<tel:+15551234>"),
    ("isbn:2983792873", None, "isbn:2983792873", {}, "<isbn:2983792873>"),
    ("<sip:a@b>;q=0.7;Expires=3600", None, "sip:a@b", {"q": "0.7", "expires": "3600"},
     "<sip:a@b>;q=0.7;expires=3600"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "display", "uri", "params", "canonical"), NAME_ADDRS,
                         ids=[n[0] for n in NAME_ADDRS])  # fmt: skip
def test_name_addr(
    text: str, display: str | None, uri: str, params: dict[str, str | None], canonical: str
) -> None:
    value = NameAddr.parse(text)
    assert value.display_name == display
    assert str(value.uri) == uri
    assert dict(value.params) == params
    assert value.tag == params.get("tag")
    assert str(value) == canonical
    assert NameAddr.parse(str(value)).uri == value.uri


def test_addr_spec_params_belong_to_the_header() -> None:
    """§20.10: without <> a ``;tag`` (and anything after the URI) is a header parameter."""
    value = NameAddr.parse("sip:alice@example.com;transport=udp")
    assert isinstance(value.uri, SipUri)
    assert dict(value.uri.params) == {}
    assert dict(value.params) == {"transport": "udp"}
    inside = NameAddr.parse("<sip:alice@example.com;transport=udp>")
    assert isinstance(inside.uri, SipUri)
    assert dict(inside.uri.params) == {"transport": "udp"}
    assert dict(inside.params) == {}


def test_name_addr_with_params() -> None:
    value = NameAddr.parse('"A" <sip:a@b>').with_params(tag="t1")
    assert str(value) == '"A" <sip:a@b>;tag=t1'
    assert value.params == MappingProxyType({"tag": "t1"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"Mr. J. User <sip:j.user@example.com>',
         "quoted display name without <URI> in '\"Mr. J. User <sip:j.user@example.com>'"),
        ('"A" sip:a@b', "quoted display name without <URI> in '\"A\" sip:a@b'"),
        ("Bell, Alexander <sip:a.g.bell@example.com>",
         "display name needs quotes: 'Bell, Alexander'"),
        ("J@ne <sip:j@example.com>", "display name needs quotes: 'J@ne'"),
        ('"A"x <sip:a@b>', "bad quoted display name in '\"A\"x <sip:a@b>'"),
        ("<sip:a@b", "missing '>' in '<sip:a@b'"),
        ("<sip:a@b> junk", "junk after '>' in '<sip:a@b> junk'"),
        ("sip:user@example.com?Route=%3Csip:sip.example.com%3E",
         "addr-spec with reserved characters: "
         "'sip:user@example.com?Route=%3Csip:sip.example.com%3E'"),
        ("sip:a@b,sip:c@d", "addr-spec with reserved characters: 'sip:a@b,sip:c@d'"),
        ("<sip:t.watson@example.org >", "bad URI 'sip:t.watson@example.org '"),
        ("", "bad URI ''"),
        ("<sip:a@b>;=x", "bad parameter '=x' in header"),
    ],
)  # fmt: skip
def test_bad_name_addrs(text: str, message: str) -> None:
    assert str(error_of(NameAddr.parse, text)) == message


def test_name_addr_list() -> None:
    values = parse_name_addr_list(
        '"Watson, T." <sip:t@example.org>;q=0.5, sip:b@example.com;expires=9,<sip:c@d>'
    )
    assert [(v.display_name, str(v.uri), dict(v.params)) for v in values] == [
        ("Watson, T.", "sip:t@example.org", {"q": "0.5"}),
        (None, "sip:b@example.com", {"expires": "9"}),
        (None, "sip:c@d", {}),
    ]
    assert parse_name_addr_list(" , ") == []
    assert str(error_of(parse_name_addr_list, '<sip:a@b>, "x <sip:c@d>')) == (
        "unterminated quoted string in '<sip:a@b>, \"x <sip:c@d>'"
    )


# ---------------------------------------------------------------------------------------------
# Via


def test_via_fields() -> None:
    via = Via.parse("SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds;rport")
    assert via.transport == "UDP"
    assert via.host == "pc33.example.com"
    assert via.port == 5060
    assert via.branch == "z9hG4bK776asdhds"
    assert "rport" in via.params and via.params["rport"] is None  # empty rport: a request
    assert via.sent_by == "pc33.example.com:5060"
    assert str(via) == "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds;rport"


def test_via_lws_and_case() -> None:
    via = Via.parse(" sip / 2.0 / tls  host.example.com ; Branch = z9hG4bKx ; RPort=5061 ")
    assert via.transport == "TLS"
    assert via.host == "host.example.com"
    assert via.port is None
    assert dict(via.params) == {"branch": "z9hG4bKx", "rport": "5061"}
    assert str(via) == "SIP/2.0/TLS host.example.com;branch=z9hG4bKx;rport=5061"


def test_via_received_brackets_are_stripped() -> None:
    """RFC 5118 §4.5: ``received=[v6]`` is tolerated and stored without brackets."""
    via = Via.parse("SIP/2.0/TCP [2001:db8::9:1]:5070;received=[2001:db8::9:255];branch=z9hG4bKa")
    assert via.host == "2001:db8::9:1"
    assert via.port == 5070
    assert via.sent_by == "[2001:db8::9:1]:5070"
    assert via.params["received"] == "2001:db8::9:255"
    plain = Via.parse("SIP/2.0/UDP h;received=2001:db8::9:255")
    assert plain.params["received"] == "2001:db8::9:255"


def test_via_with_params() -> None:
    via = Via.parse("SIP/2.0/UDP h;branch=z9hG4bK1;rport")
    answered = via.with_params(received="192.0.2.1", rport="5062")
    assert str(answered) == "SIP/2.0/UDP h;branch=z9hG4bK1;rport=5062;received=192.0.2.1"
    assert via.params["rport"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SIP/3.0/UDP host", "bad Via 'SIP/3.0/UDP host'"),
        ("SIP/2.0/UDP", "bad Via 'SIP/2.0/UDP'"),
        ("SIP/2.0 host", "bad Via 'SIP/2.0 host'"),
        ("", "bad Via ''"),
        ("SIP/2.0/UDP host:abc", "bad port in Via: 'host:abc'"),
        ("SIP/2.0/UDP [::1", "bad IPv6 reference in Via: '[::1'"),
        ("SIP/2.0/UDP host;rport=0", "bad rport in Via 'SIP/2.0/UDP host;rport=0'"),
        ("SIP/2.0/UDP host;rport=65536", "bad rport in Via 'SIP/2.0/UDP host;rport=65536'"),
        ("SIP/2.0/UDP host;rport=", "bad rport in Via 'SIP/2.0/UDP host;rport='"),
        ("SIP/2.0/UDP host;rport=x1", "bad rport in Via 'SIP/2.0/UDP host;rport=x1'"),
        ("SIP/2.0/UDP host;rport=\u00b9", "bad rport in Via 'SIP/2.0/UDP host;rport=\u00b9'"),
        ("SIP/2.0/UDP host;;branch=1", "bad parameter '' in Via"),
    ],
)
def test_bad_vias(text: str, message: str) -> None:
    assert str(error_of(Via.parse, text)) == message


def test_via_huge_rport_is_a_protocol_error() -> None:
    error = error_of(Via.parse, "SIP/2.0/UDP h;rport=" + "1" * 5000)
    assert str(error).startswith("bad rport in Via")
