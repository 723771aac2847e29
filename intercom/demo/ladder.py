"""The SIP ladder diagram of the demo: one column per party, one arrow per message on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

from intercom.sip.message import Message, Request

GAP = 34  # characters between two columns


def label_of(message: Message) -> str:
    """``INVITE`` for a request, ``180 Ringing (INVITE)`` for a response, short enough to fit."""
    if isinstance(message, Request):
        return message.method
    method = f" ({message.cseq.method})"
    room = GAP - 6 - len(method) - 4
    reason = message.reason if len(message.reason) <= room else message.reason[: room - 1] + "."
    return f"{message.status} {reason}{method}"


@dataclass
class Ladder:
    """Arrows between neighbouring columns, in the order they were added."""

    parties: tuple[str, ...]
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # sender, receiver, label
    media_after: int | None = None  # media flows from the first to the last party after this row
    media_label: str = ""

    def add(self, sender: str, receiver: str, label: str) -> None:
        if sender not in self.parties or receiver not in self.parties or sender == receiver:
            raise ValueError(f"no arrow from {sender!r} to {receiver!r}")
        self.rows.append((sender, receiver, label))

    def media(self, label: str) -> None:
        """Media (RTP) flows end to end from here on, drawn as a double arrow."""
        self.media_after, self.media_label = len(self.rows), label

    def draw(self) -> str:
        lines = ["".join(f"{name:<{GAP + 1}}" for name in self.parties).rstrip()]
        lines.append("|" + "|".join(" " * GAP for _ in self.parties[1:]) + "|")
        for index, (sender, receiver, label) in enumerate(self.rows):
            if index == self.media_after:
                width = (len(self.parties) - 1) * (GAP + 1) - 1
                lines.append("|<" + f" {self.media_label} ".center(width - 2, "=") + ">|")
            a, b = self.parties.index(sender), self.parties.index(receiver)
            left, right = min(a, b), max(a, b)
            width = (right - left) * (GAP + 1) - 1  # an arrow spans the bars it passes
            body = f" {label[: width - 6]} ".center(width - 1, "-")
            arrow = body + ">" if a < b else "<" + body
            cells = [" " * GAP] * left + [arrow] + [" " * GAP] * (len(self.parties) - 1 - right)
            lines.append("|" + "|".join(cells) + "|")
        return "\n".join(lines)
