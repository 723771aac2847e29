"""The callee sends no BYE before the ACK of its 2xx (RFC 3261 §15): a hang-up waits for the
ACK, or for the 64*T1 give-up."""

from __future__ import annotations

from intercom.sip.endpoint import Endpoint
from intercom.sip.events import CallEnded
from intercom.sip.message import Request
from intercom.sip.session import TIMER_ACK

from .dialog_peer import ANSWER, OFFER, PHONE, door, events, in_dialog, responses, sent


def answered_not_acked() -> tuple[Endpoint, str]:
    endpoint = door()
    invite = in_dialog(
        "INVITE", call_id="in-1", from_tag="phone1", to_tag=None, cseq=1, branch="z9hG4bKi1",
        body=OFFER,
    )  # fmt: skip
    endpoint.receive(invite, PHONE, 0.0)
    endpoint.accept("in-1", ANSWER, 0.0)
    [ok] = [r for r in responses(endpoint) if r.status == 200]
    events(endpoint)
    assert ok.to.tag
    return endpoint, ok.to.tag


def test_a_hangup_before_the_ack_sends_bye_once_the_ack_is_in() -> None:
    endpoint, ours = answered_not_acked()
    endpoint.hangup("in-1", 0.1)
    assert [m for m in sent(endpoint) if isinstance(m, Request)] == []
    assert events(endpoint) == []
    ack = in_dialog(
        "ACK", call_id="in-1", from_tag="phone1", to_tag=ours, cseq=1, branch="z9hG4bKa1"
    )
    endpoint.receive(ack, PHONE, 0.2)
    [bye] = [m for m in sent(endpoint) if isinstance(m, Request)]
    assert bye.method == "BYE"
    assert events(endpoint) == [CallEnded("in-1", "hung up", by_peer=False)]


def test_a_hangup_before_an_ack_that_never_comes_sends_bye_at_the_give_up() -> None:
    endpoint, _ = answered_not_acked()
    endpoint.hangup("in-1", 0.1)
    now = 0.1
    while (deadline := endpoint.get_timer()) is not None and deadline < TIMER_ACK:
        now = deadline
        endpoint.handle_timer(now)
        requests = [m for m in sent(endpoint) if isinstance(m, Request)]
        assert requests == []  # only 2xx retransmissions until the give-up
    endpoint.handle_timer(TIMER_ACK)
    [bye] = [m for m in sent(endpoint) if isinstance(m, Request)]
    assert bye.method == "BYE"
    assert events(endpoint) == [CallEnded("in-1", "no ACK", by_peer=False)]
