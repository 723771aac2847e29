"""Session refresh by re-INVITE where the peer does not take UPDATE (RFC 4028 §10, RFC 3311),
and a refresh answered 491 retried after the random delay of RFC 3261 §14.1."""

from __future__ import annotations

import random

import pytest

from intercom.sip.build import make_response
from intercom.sip.core import Ids
from intercom.sip.session import SessionTimer, glare_delay

from .test_session import OFFER, make_session, peer_request

TIMER = SessionTimer(1800, we_refresh=True)


def test_a_peer_without_update_is_refreshed_by_a_reinvite_with_the_same_sdp() -> None:
    session, sender, _ = make_session(timer=TIMER, allow="INVITE, ACK, BYE, CANCEL")
    session.handle_timer(900.0)
    assert sender.sent("UPDATE") == []
    (reinvite,) = sender.sent("INVITE")
    assert reinvite.headers.get("CSeq") == "2 INVITE"
    assert reinvite.headers.get("Session-Expires") == "1800;refresher=uac"
    assert reinvite.content_type == "application/sdp" and reinvite.body == OFFER  # o= unchanged
    ok = make_response(reinvite, 200)
    ok.headers.add("Session-Expires", "1800;refresher=uac")
    session.on_response(reinvite, ok, 900.1)
    [(ack, _)] = sender.acks
    assert (ack.method, ack.headers.get("CSeq")) == ("ACK", "2 ACK")
    assert session.get_timer() == 900.1 + 900
    assert not session.ended
    session.on_response(reinvite, ok, 900.6)  # a retransmission: ACKed again
    assert [a.headers.get("CSeq") for a, _ in sender.acks] == ["2 ACK", "2 ACK"]


def test_the_latest_allow_in_the_dialog_decides() -> None:
    session, sender, _ = make_session(timer=TIMER, allow="INVITE, ACK, BYE")
    info = peer_request("INFO", 2, b"", ("Allow", "INVITE, ACK, BYE, UPDATE"))
    assert session.on_request(info, 10.0) is not None
    session.handle_timer(900.0)
    (update,) = sender.sent("UPDATE")
    nope = make_response(update, 200)
    nope.headers.add("Session-Expires", "1800;refresher=uac")
    nope.headers.add("Allow", "INVITE, ACK, BYE")
    session.on_response(update, nope, 900.1)
    session.handle_timer(1800.1)
    assert [r.method for r, _, _ in sender.requests] == ["UPDATE", "INVITE"]


@pytest.mark.parametrize(("owns_call_id", "low", "high"), [(True, 2.1, 4.0), (False, 0.0, 2.0)])
def test_491_is_retried_after_a_random_delay(owns_call_id: bool, low: float, high: float) -> None:
    ids = Ids(random.Random(7))
    session, sender, _ = make_session(timer=TIMER, ids=ids, owns_call_id=owns_call_id)
    session.handle_timer(900.0)
    (update,) = sender.sent("UPDATE")
    session.on_response(update, make_response(update, 491), 900.1)
    retry_at = session.get_timer()
    assert retry_at is not None and 900.1 + low <= retry_at <= 900.1 + high
    assert retry_at - 900.1 == pytest.approx(glare_delay(Ids(random.Random(7)), owns_call_id))
    session.handle_timer(retry_at)
    assert len(sender.sent("UPDATE")) == 2 and not session.ended


def test_a_peer_offer_while_our_refresh_reinvite_is_pending_gets_491() -> None:
    session, sender, _ = make_session(timer=TIMER, allow="INVITE, ACK, BYE")
    session.handle_timer(900.0)
    (reinvite,) = sender.sent("INVITE")
    glare = session.on_request(peer_request("INVITE", 2, OFFER), 900.05)
    assert glare is not None and glare.status == 491  # RFC 3261 §14.2
    ok = make_response(reinvite, 200)
    ok.headers.add("Session-Expires", "1800;refresher=uac")
    session.on_response(reinvite, ok, 900.1)
    later = session.on_request(peer_request("INVITE", 3, OFFER), 900.2)
    assert later is not None and later.status == 200
