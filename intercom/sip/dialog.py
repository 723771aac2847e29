"""Dialog state (RFC 3261 §12) shared by the outgoing and incoming call machines.

Theory of operation:

* A dialog is identified by Call-ID, local tag and remote tag (§12). The UAC creates it from a
  1xx-with-To-tag (EARLY) or a 2xx (CONFIRMED) to its INVITE (§12.1.2): the route set is the
  response's Record-Route *reversed*, the remote target its Contact, the local CSeq the INVITE's.
  The UAS creates it from the INVITE (§12.1.1): route set is Record-Route *in order*, the remote
  CSeq the INVITE's.
* Requests inside a dialog (§12.2.1.1) carry the dialog's From/To/Call-ID, the next local CSeq
  (except ACK and CANCEL, which reuse the INVITE's number), and are routed by the route set:
  loose routing when the first route has ``;lr`` (Request-URI = remote target, Route = route
  set), strict routing otherwise (Request-URI = first route, stripped of its parameters that
  are not allowed in a Request-URI; Route = the rest plus the remote target, §12.2.1.1).
* A request belongs to the dialog only when its Call-ID, To-tag (our local tag) and From-tag
  (the remote tag) all match (§12.2.2, :meth:`Dialog.matches`); the Call-ID alone is guessable
  from any message of the call and proves nothing.
* Incoming requests inside a dialog must have a CSeq higher than the last one (§12.2.2); a lower
  one gets 500. Target refresh requests (re-INVITE, UPDATE) and their 2xx replace the remote
  target (§12.2.1.2, §12.2.2, RFC 3311 §5).

This module is data plus a few pure methods: it sends nothing and keeps no time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from intercom.sip.errors import LocalProtocolError
from intercom.sip.message import Headers, Request, Response
from intercom.sip.uri import NameAddr, SipUri, Uri

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE"})


class DialogState(Enum):
    EARLY = "early"  #: created by a provisional response with a To-tag
    CONFIRMED = "confirmed"  #: created or promoted by a 2xx
    TERMINATED = "terminated"  #: BYE sent or received, or the INVITE failed


@dataclass(slots=True)
class Dialog:
    call_id: str
    local: NameAddr  # our From (UAC) / To (UAS), with our tag
    remote: NameAddr  # the peer's, with its tag
    remote_target: Uri
    route_set: list[NameAddr] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    state: DialogState = DialogState.EARLY

    @property
    def local_tag(self) -> str:
        return self.local.tag or ""

    @property
    def remote_tag(self) -> str:
        return self.remote.tag or ""

    @classmethod
    def from_uac_response(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the dialog a 1xx (with To-tag) or 2xx to our INVITE creates."""
        if not response.to.tag:
            raise LocalProtocolError("a response without a To-tag creates no dialog")
        contacts = response.contacts
        target = contacts[0].uri if contacts else request.uri
        return cls(
            call_id=request.call_id,
            local=request.from_,
            remote=response.to,
            remote_target=target,
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq.seq,
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
        )

    @classmethod
    def from_uas_request(cls, request: Request, local_tag: str) -> Dialog:
        """§12.1.1: the dialog we create by answering an INVITE with a 1xx or 2xx."""
        contacts = request.contacts
        # RFC 2543 requests may lack Contact (RFC 4475 §3.4.1): From is the best target left.
        target = contacts[0].uri if contacts else request.from_.uri
        return cls(
            call_id=request.call_id,
            local=request.to.with_params(tag=local_tag),
            remote=request.from_,
            remote_target=target,
            route_set=list(request.record_route),
            local_seq=0,
            remote_seq=request.cseq.seq,
        )

    def update_from_response(self, response: Response) -> None:
        """A 2xx (or reliable 1xx) within the dialog: confirm it and refresh the target."""
        if 200 <= response.status < 300:
            self.state = DialogState.CONFIRMED
            # §12.1.2: the route set is fixed once set; a 2xx after an early dialog resets it.
            self.route_set = list(reversed(response.record_route))
        contacts = response.contacts
        if contacts:
            self.remote_target = contacts[0].uri

    def matches(self, request: Request) -> bool:
        """§12.2.2: the request's Call-ID, To-tag and From-tag are this dialog's identifiers."""
        return (
            request.call_id == self.call_id
            and (request.to.tag or "") == self.local_tag
            and (request.from_.tag or "") == self.remote_tag
        )

    def accept_remote_request(self, request: Request) -> bool:
        """§12.2.2: False when the CSeq is out of order (answer 500); updates target and seq."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq <= self.remote_seq:
                return False
            self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        return True

    def create_request(self, method: str, *, seq: int | None = None) -> Request:
        """A request inside the dialog (§12.2.1.1), with no Via: the endpoint adds it.

        ACK and CANCEL take ``seq`` (the INVITE's number); every other method takes the next
        local CSeq.
        """
        if seq is None:
            if method in ("ACK", "CANCEL"):
                raise LocalProtocolError(f"{method} reuses the INVITE's CSeq: pass seq")
            self.local_seq += 1
            seq = self.local_seq
        uri, routes, strict = self._routing()
        headers = Headers()
        for route in routes:
            headers.add("Route", str(route))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local))
        headers.add("To", str(self.remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        return Request(headers=headers, method=method, uri=uri, strict_routed=strict)

    def _routing(self) -> tuple[Uri, list[NameAddr], bool]:
        """Request-URI, Route headers, and whether the first hop is a strict router."""
        if not self.route_set:
            return self.remote_target, [], False
        first = self.route_set[0]
        if isinstance(first.uri, SipUri) and "lr" in first.uri.params:
            return self.remote_target, list(self.route_set), False
        # Strict routing (RFC 2543 proxies): the first route becomes the Request-URI.
        uri = first.uri
        if isinstance(uri, SipUri):
            uri = uri.without_params("method", "maddr", "ttl", "transport", "lr")
        return uri, [*self.route_set[1:], NameAddr(self.remote_target)], True
