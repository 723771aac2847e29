"""The INVITEs of live calls, kept past their transaction: which late 2xx is really ours.

Theory of operation. A response that matches no client transaction (§17.1.3) is discarded
(RFC 6026 §8.9): Timer M keeps an INVITE client transaction 64*T1 after its first 2xx for the
other forks' answers, so a genuine one finds it. One exception is kept: the peer whose 2xx we
ACKed resends it until our ACK reaches it, and should a retransmission come after Timer M, it
must be ACKed again or the peer ends the call for want of an ACK. So every INVITE and re-INVITE
of a live call is remembered here, as sent, with its TU and where it went, until its call ends
(at most ``INVITES_KEPT``, the oldest forgotten first). A late response goes to that TU only
when it is a 2xx that answers the INVITE whole (:meth:`SentInvite.answered_by`): the INVITE's
top-Via branch (the lookup's key), Call-ID, CSeq and From-tag (ours, §8.2.6.2), and for a
re-INVITE the dialog's To-tag. Knowing a call's Call-ID, which the door logs, is not enough.

The destinations serve the gate too: a response from an untrusted source is parsed only when a
request of ours with its branch went to that source's address (:func:`same_host`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass

from intercom.ip import parse_ip
from intercom.sip.core import Address, TransactionUser
from intercom.sip.message import Request, Response

__all__ = ["INVITES_KEPT", "SentInvite", "SentInvites", "answers", "same_host"]

INVITES_KEPT = 64
"""INVITEs remembered past their transaction, over all live calls."""


def answers(response: Response, request: Request) -> bool:
    """§8.2.6.2: a response repeats its request's Call-ID, CSeq and From (its tag: ours); one
    that does not is no answer to it, whatever its branch."""
    return (
        response.cseq == request.cseq
        and response.call_id == request.call_id
        and response.from_.tag == request.from_.tag
    )


@dataclass(frozen=True, slots=True)
class SentInvite:
    """An INVITE or re-INVITE of ours as sent, its TU and where it went."""

    tu: TransactionUser
    request: Request
    destination: Address

    def answered_by(self, response: Response) -> bool:
        """A 2xx (found by our top-Via branch) that :func:`answers` the INVITE and, for a
        re-INVITE, carries the dialog's To-tag."""
        request = self.request
        return (
            200 <= response.status < 300
            and answers(response, request)
            and (request.to.tag is None or response.to.tag == request.to.tag)
        )


class SentInvites:
    """The INVITEs of live calls by top-Via branch (see the module docstring)."""

    def __init__(self, limit: int = INVITES_KEPT) -> None:
        self._limit = limit
        self._by_branch: OrderedDict[str, SentInvite] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_branch)

    def remember(self, request: Request, tu: TransactionUser, destination: Address) -> None:
        """``request`` (with our Via) goes to ``destination`` in a client transaction of ``tu``."""
        branch = request.top_via.branch
        if request.method != "INVITE" or not branch:
            return
        self._by_branch[branch] = SentInvite(tu, request, destination)
        while len(self._by_branch) > self._limit:
            self._by_branch.popitem(last=False)

    def get(self, branch: str) -> SentInvite | None:
        return self._by_branch.get(branch)

    def forget_calls(self, call_ids: Collection[str]) -> None:
        """The calls ``call_ids`` ended: nothing of theirs is answered any more."""
        if call_ids and self._by_branch:
            for branch, sent in list(self._by_branch.items()):
                if sent.request.call_id in call_ids:
                    del self._by_branch[branch]


def same_host(one: str, other: str) -> bool:
    """Whether two IP literals name the same host (an IPv4-mapped IPv6 address, as a
    dual-stack socket reports an IPv4 peer, is that IPv4 address)."""
    return one == other or (parse_ip(one) or one) == (parse_ip(other) or other)
