"""The endpoint holds nothing forever and matches dialogs whole (RFC 3261 §8.2, §9.1, §12.2.2).

Each test attacks Endpoint.receive() with what a hostile or broken peer sends, then runs every
timer out and checks what is left (``Endpoint.held``).
"""

from __future__ import annotations

import logging

import pytest

from intercom.sip.call import TIMER_CANCEL
from intercom.sip.core import Address
from intercom.sip.dialog import Dialog as SipDialog
from intercom.sip.endpoint import Endpoint, Held
from intercom.sip.errors import RemoteProtocolError
from intercom.sip.events import (
    CallEnded,
    CallFailed,
    IncomingCallCancelled,
    IncomingCallReceived,
    InfoReceived,
    MediaUpdated,
)
from intercom.sip.incoming import UNDECIDED_LIMIT
from intercom.sip.message import Request
from intercom.sip.uri import SipUri
from tests.sip.dialog_peer import (
    ANSWER,
    OFFER,
    PHONE,
    Dialog,
    Media,
    door,
    events,
    in_dialog,
    incoming_call,
    outgoing_call,
    reply,
    responses,
    run_out,
    sent,
)

NOTHING = Held(0, 0, {})
PHONE_URI = SipUri(PHONE.host, "family")


def new_invite(call_id: str, extra: str = "", branch: str = "") -> bytes:
    return in_dialog(
        "INVITE", call_id=call_id, from_tag="ft", to_tag=None, cseq=1,
        branch=branch or f"z9hG4bK{call_id}", body=OFFER, extra=extra,
    )  # fmt: skip


def source(i: int) -> Address:
    """A distinct source per message, so that no rate limit hides a missing answer."""
    return Address("udp", f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256 + 1}", 5060)


def statuses(endpoint: Endpoint) -> list[tuple[int, str]]:
    return [(r.status, r.reason) for r in responses(endpoint)]


# -- every request that starts a transaction gets a final response ------------------------------


def test_contact_star_invites_are_answered_400_and_nothing_is_held() -> None:
    endpoint = door()
    for i in range(1000):
        endpoint.receive(new_invite(f"star{i}", "Contact: *\r\n"), source(i), 0.0)
        assert statuses(endpoint) == [(400, "Bad Contact")]
    assert events(endpoint) == []  # the application never heard of them
    run_out(endpoint, 1.0)
    assert endpoint.held() == NOTHING


@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "-5", "abc", "", "1800;refresher=boss", "1800;refresher", "1800;=x", "٣٠٠"],
)
def test_absurd_session_expires_is_answered_400_before_the_application(value: str) -> None:
    endpoint = door()
    endpoint.receive(new_invite("se", f"Session-Expires: {value}\r\n"), PHONE, 0.0)
    assert statuses(endpoint) == [(400, "Bad Session-Expires")]
    assert events(endpoint) == []
    run_out(endpoint, 0.0)
    assert endpoint.held() == NOTHING


def test_two_session_expires_are_answered_400() -> None:
    endpoint = door()
    twice = "Session-Expires: 1800\r\nx: 1900\r\n"  # x is its compact form
    endpoint.receive(new_invite("se2", twice), PHONE, 0.0)
    assert statuses(endpoint) == [(400, "Bad Session-Expires")]


def test_too_small_session_interval_gets_422_before_the_application() -> None:
    endpoint = door()
    small = "Supported: timer\r\nSession-Expires: 30\r\n"
    endpoint.receive(new_invite("small", small), PHONE, 0.0)
    [response] = responses(endpoint)
    assert (response.status, response.headers.get("Min-SE")) == (422, "90")
    assert events(endpoint) == []


def test_session_expires_the_application_accepts_never_raises() -> None:
    endpoint = door()
    endpoint.receive(new_invite("ok", f"Session-Expires: {2**31 - 1};refresher=uac\r\n"), PHONE, 0)
    [received] = events(endpoint)
    assert isinstance(received, IncomingCallReceived)
    endpoint.accept("ok", ANSWER, 0.1)
    [ok] = responses(endpoint)
    assert ok.status == 200 and ok.headers.get("Session-Expires") == f"{2**31 - 1};refresher=uas"


def test_absurd_session_expires_and_min_se_in_responses_are_survived() -> None:
    endpoint = door()
    endpoint.call(PHONE_URI, ANSWER, 0.0)
    [invite] = [m for m in sent(endpoint) if isinstance(m, Request)]
    huge = f"Session-Expires: {'9' * 5000};refresher=uac\r\n"
    endpoint.receive(reply(invite, 200, to_tag="k", body=OFFER, extra=huge), PHONE, 0.1)
    assert endpoint.held().calls[invite.call_id] == "connected"  # as if no timer was asked
    assert endpoint.get_timer() == 0.1 + 32.0  # Timer M only: no session refresh planned
    # A timer we refresh, then a 422 whose Min-SE is 5000 digits long.
    endpoint = door()
    endpoint.call(PHONE_URI, ANSWER, 0.0)
    [invite] = [m for m in sent(endpoint) if isinstance(m, Request)]
    timer = "Session-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n"
    endpoint.receive(reply(invite, 200, to_tag="k", body=OFFER, extra=timer), PHONE, 0.1)
    sent(endpoint)
    endpoint.handle_timer(60.1)
    [update] = [m for m in sent(endpoint) if isinstance(m, Request) and m.method == "UPDATE"]
    endpoint.receive(reply(update, 422, to_tag="k", extra=f"Min-SE: {'9' * 5000}\r\n"), PHONE, 60.2)
    assert endpoint.held().calls[invite.call_id] == "connected"


def test_an_invite_nobody_decides_on_is_refused_480_after_three_minutes() -> None:
    endpoint = door()
    endpoint.receive(new_invite("undecided"), PHONE, 10.0)
    [received] = events(endpoint)
    assert isinstance(received, IncomingCallReceived)
    assert endpoint.get_timer() == 10.2  # the 100 Trying
    endpoint.handle_timer(10.2)
    assert statuses(endpoint) == [(100, "Trying")]
    assert endpoint.get_timer() == 10.0 + UNDECIDED_LIMIT
    endpoint.handle_timer(10.0 + UNDECIDED_LIMIT - 0.01)
    assert sent(endpoint) == []
    endpoint.handle_timer(10.0 + UNDECIDED_LIMIT)
    assert [r.status for r in responses(endpoint)] == [480]
    assert events(endpoint) == [IncomingCallCancelled("undecided", "not answered")]
    endpoint.accept("undecided", ANSWER, 200.0)  # too late: changes nothing
    assert sent(endpoint) == []
    run_out(endpoint, 200.0)
    assert endpoint.held() == NOTHING


# -- every transaction ends by its timers ---------------------------------------------------------


@pytest.mark.parametrize("cancel_answered", [False, True])
def test_invite_whose_cancel_gets_no_final_response_is_given_up(cancel_answered: bool) -> None:
    endpoint = door()
    endpoint.call(PHONE_URI, ANSWER, 0.0)
    [invite] = [m for m in sent(endpoint) if isinstance(m, Request)]
    endpoint.receive(reply(invite, 180, to_tag="k"), PHONE, 0.1)  # Timer B stops (§17.1.1.2)
    events(endpoint)
    assert endpoint.hangup(invite.call_id, 5.0)
    [cancel] = [m for m in sent(endpoint) if isinstance(m, Request)]
    assert cancel.method == "CANCEL"
    if cancel_answered:  # the CANCEL is answered, the INVITE never is
        endpoint.receive(reply(cancel, 200, to_tag="k"), PHONE, 5.1)
    run_out(endpoint, 5.1)
    assert [e for e in events(endpoint) if isinstance(e, CallFailed)] == [
        CallFailed(invite.call_id, None, "cancelled")
    ]
    assert endpoint.held() == NOTHING
    assert TIMER_CANCEL == 32.0


def test_a_2xx_crossing_the_cancel_still_ends_everything() -> None:
    endpoint = door()
    endpoint.call(PHONE_URI, ANSWER, 0.0)
    [invite] = [m for m in sent(endpoint) if isinstance(m, Request)]
    endpoint.receive(reply(invite, 180, to_tag="k"), PHONE, 0.1)
    endpoint.hangup(invite.call_id, 5.0)
    endpoint.receive(reply(invite, 200, to_tag="k", body=OFFER), PHONE, 5.1)
    out = [m for m in sent(endpoint) if isinstance(m, Request)]
    assert [m.method for m in out] == ["CANCEL", "ACK", "BYE"]
    run_out(endpoint, 5.1)
    assert endpoint.held() == NOTHING


# -- dialogs are matched whole: Call-ID, our tag and theirs (§12.2.2) ------------------------------


FORGERIES = ["wrong From-tag", "no From-tag", "wrong To-tag", "swapped tags"]


def forged(
    dialog: Dialog, method: str, branch: str, how: str, *, body: bytes = b"", seq: int | None = None
) -> bytes:
    """A request with the dialog's Call-ID but forged tags."""
    if how == "swapped tags":
        return dialog.request(method, branch, body=body, seq=seq,
                              from_tag=dialog.ours, to_tag=dialog.theirs)  # fmt: skip
    if how == "wrong From-tag":
        return dialog.request(method, branch, body=body, seq=seq, from_tag="mallory")
    if how == "no From-tag":
        return dialog.request(method, branch, body=body, seq=seq, from_tag=None)
    return dialog.request(method, branch, body=body, seq=seq, to_tag="guess")


@pytest.mark.parametrize("how", FORGERIES)
@pytest.mark.parametrize("direction", ["incoming", "outgoing"])
def test_forged_in_dialog_requests_get_481_and_change_nothing(how: str, direction: str) -> None:
    media = Media()
    endpoint = door(media)
    if direction == "incoming":
        dialog = incoming_call(endpoint)
        state = "confirmed"
    else:
        dialog, _ = outgoing_call(endpoint)
        state = "connected"
    offers = len(media.offers)
    sent(endpoint)
    attempts = [("BYE", b""), ("INVITE", OFFER), ("UPDATE", OFFER), ("INFO", b"Signal=1\r\n")]
    for i, (method, body) in enumerate(attempts):
        endpoint.receive(forged(dialog, method, f"z9hG4bKforged{i}", how, body=body), PHONE, 1.0)
        assert [r.status for r in responses(endpoint)] == [481], method
    endpoint.receive(forged(dialog, "ACK", "z9hG4bKforgedack", how, seq=1), PHONE, 1.0)
    assert sent(endpoint) == []  # an ACK matching no dialog is dropped
    assert len(media.offers) == offers  # no forged offer reached the media
    assert not [
        e for e in events(endpoint) if isinstance(e, CallEnded | InfoReceived | MediaUpdated)
    ]
    run_out(endpoint, 1.0)
    assert endpoint.held() == Held(0, 0, {dialog.call_id: state})
    sent(endpoint)  # the 481s' retransmissions
    # The real peer still can: its BYE ends the call.
    endpoint.receive(dialog.request("BYE", "z9hG4bKrealbye"), PHONE, 100.0)
    assert [r.status for r in responses(endpoint)] == [200]
    assert [type(e) for e in events(endpoint)] == [CallEnded]
    run_out(endpoint, 100.0)
    assert endpoint.held() == NOTHING


def test_the_real_peer_moves_media_and_sends_digits() -> None:
    media = Media()
    endpoint = door(media)
    dialog = incoming_call(endpoint)
    sent(endpoint)
    endpoint.receive(dialog.request("INFO", "z9hG4bKi", body=b"Signal=5\r\n"), PHONE, 1.0)
    endpoint.receive(dialog.request("UPDATE", "z9hG4bKu", body=OFFER, seq=3), PHONE, 1.1)
    assert [r.status for r in responses(endpoint)] == [200, 200]
    assert [type(e) for e in events(endpoint)] == [InfoReceived, MediaUpdated]


def test_bye_from_a_ringing_leg_the_call_knows_is_accepted() -> None:
    endpoint = door()
    dialog, _ = outgoing_call(endpoint)
    attic = in_dialog(
        "BYE", call_id=dialog.call_id, from_tag="attic", to_tag=dialog.ours, cseq=1,
        branch="z9hG4bKattic",
    )  # fmt: skip
    endpoint.receive(attic, PHONE, 1.0)
    assert [r.status for r in responses(endpoint)] == [200]  # a fork's leg the call knows
    assert endpoint.held().calls[dialog.call_id] == "connected"


# -- the last line of defence ---------------------------------------------------------------------


def test_an_exception_while_handling_a_request_is_answered_500_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_media(call_id: str, offer: bytes) -> bytes | None:
        raise RuntimeError("codec table corrupted")

    endpoint = door(broken_media)  # type: ignore[arg-type]
    dialog = incoming_call(endpoint)
    sent(endpoint)
    caplog.set_level(logging.INFO, logger="intercom.sip.endpoint")
    caplog.clear()
    endpoint.receive(dialog.request("INVITE", "z9hG4bKre", body=OFFER), PHONE, 1.0)
    assert [r.status for r in responses(endpoint)] == [500]
    [record] = [r for r in caplog.records if r.name == "intercom.sip.endpoint"]
    assert "RuntimeError: codec table corrupted" in record.getMessage()
    assert "\n" not in record.getMessage() and not record.exc_info
    endpoint.receive(dialog.request("INVITE", "z9hG4bKre", body=OFFER), PHONE, 1.2)
    assert [r.status for r in responses(endpoint)] == [500]  # the transaction's retransmission
    run_out(endpoint, 1.2)
    assert endpoint.held() == Held(0, 0, {dialog.call_id: "confirmed"})


def test_a_peer_input_error_deep_inside_gets_500_and_leaves_no_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable(request: Request, local_tag: str) -> object:
        raise RemoteProtocolError("unreadable Record-Route")

    monkeypatch.setattr(SipDialog, "from_uas_request", unreadable)
    endpoint = door()
    caplog.set_level(logging.INFO, logger="intercom.sip.endpoint")
    endpoint.receive(new_invite("deep"), PHONE, 0.0)
    assert [r.status for r in responses(endpoint)] == [500]
    assert events(endpoint) == []
    [record] = [r for r in caplog.records if r.name == "intercom.sip.endpoint"]
    assert record.levelno == logging.INFO and "unreadable Record-Route" in record.getMessage()
    run_out(endpoint, 0.0)
    assert endpoint.held() == NOTHING


def test_an_error_after_the_call_was_made_leaves_no_undecided_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from intercom.sip import endpoint as endpoint_module

    def broken_event(**fields: object) -> IncomingCallReceived:
        raise ValueError("event queue broken")

    monkeypatch.setattr(endpoint_module, "IncomingCallReceived", broken_event)
    endpoint = door()
    endpoint.receive(new_invite("late"), PHONE, 0.0)
    assert [r.status for r in responses(endpoint)] == [500]
    assert events(endpoint) == [IncomingCallCancelled("late", "failed")]
    endpoint.ring("late")  # the application, if it heard of the call, finds nothing to do
    endpoint.accept("late", ANSWER, 0.1)
    assert sent(endpoint) == []
    run_out(endpoint, 0.1)
    assert endpoint.held() == NOTHING
