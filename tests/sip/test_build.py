"""Tests for intercom.sip.build: the Via stamp of a received request (RFC 3261 §18.2.1,
RFC 3581 §4)."""

from __future__ import annotations

import pytest

from intercom.sip.build import stamp_via, stamped_via
from intercom.sip.message import Request, parse_message


@pytest.mark.parametrize(
    ("via", "stamped"),
    [("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1", "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1"),
     ("SIP/2.0/UDP h;branch=z9hG4bK1;rport",
      "SIP/2.0/UDP h;branch=z9hG4bK1;rport=5070;received=192.0.2.7"),
     ("SIP/2.0/UDP [2001:db8::7]:5060;received=198.51.100.1", "SIP/2.0/UDP [2001:db8::7]:5060"),
     ('SIP/2.0/UDP h;x="a;rport;received=1";rport',
      'SIP/2.0/UDP h;x="a;rport;received=1";rport=5070;received=192.0.2.7'),
     ('SIP/2.0/UDP 192.0.2.7;x="open;rport', 'SIP/2.0/UDP 192.0.2.7;x="open;rport')],
)  # fmt: skip
def test_stamped_via(via: str, stamped: str) -> None:
    host = "2001:db8::7" if "[" in via else "192.0.2.7"
    assert stamped_via(via, host, 5070) == stamped


def test_stamping_the_via_leaves_the_other_parsed_headers_alone() -> None:
    data = (
        b"OPTIONS sip:door@192.0.2.10 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKs1;rport\r\n"
        b"From: <sip:phone@198.51.100.9>;tag=f1\r\nTo: <sip:door@192.0.2.10>\r\n"
        b"Call-ID: s1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    from_, to, cseq, via = request.from_, request.to, request.cseq, request.top_via
    stamp_via(request, "203.0.113.9", 40000)
    assert (request.from_, request.to, request.cseq) == (from_, to, cseq)
    assert request.from_ is from_ and request.to is to and request.cseq is cseq
    stamped = request.top_via
    assert stamped is not via and stamped.branch == via.branch == "z9hG4bKs1"
    assert (stamped.params["rport"], stamped.params["received"]) == ("40000", "203.0.113.9")
