"""The demo's ladder drawing."""

from __future__ import annotations

import pytest

from intercom.demo.ladder import GAP, Ladder, label_of
from intercom.sip.message import parse_message


def test_arrows_point_from_sender_to_receiver_in_their_own_gap() -> None:
    ladder = Ladder(("door", "pbx", "phone"))
    ladder.add("door", "pbx", "INVITE")
    ladder.add("phone", "pbx", "180 Ringing (INVITE)")
    ladder.media("RTP")
    ladder.add("door", "phone", "BYE")
    lines = ladder.draw().splitlines()
    assert lines[0].split() == ["door", "pbx", "phone"]
    invite, ringing, media, bye = lines[2:]
    assert invite.startswith("|--") and invite.index(">|") == GAP
    assert invite.endswith(" " * GAP + "|")
    assert ringing.startswith("|" + " " * GAP + "|<--") and "180 Ringing" in ringing
    assert media.startswith("|<=") and media.endswith("=>|") and "RTP" in media
    assert bye.endswith("->|") and len(bye) == len(invite) == len(media)
    with pytest.raises(ValueError):
        ladder.add("door", "door", "loop")


def test_labels_name_the_method_and_fit_the_gap() -> None:
    response = parse_message(
        b"SIP/2.0 407 Proxy Authentication Required\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    label = label_of(response)
    assert label.startswith("407 Proxy") and label.endswith("(INVITE)") and len(label) <= GAP - 6
