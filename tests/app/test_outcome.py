"""The outcome of a failed call and the tone the door plays for each outcome."""

from __future__ import annotations

import pytest

from intercom.app.outcome import OUTCOMES, feedback_tone, outcome_of


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (486, "busy", "busy"),
        (600, "busy", "busy"),
        (603, "declined", "declined"),
        (408, "timeout", "no-answer"),
        (480, "unavailable", "no-answer"),
        (487, "cancelled", "cancelled"),
        (486, "cancelled", "busy"),  # the status wins over the reason
        (404, "unavailable", "failed"),
        (500, "500 Server Internal Error", "failed"),
        (None, "timeout", "failed"),  # Timer B: nobody there
        (None, "unreachable", "failed"),
        (None, "cancelled", "cancelled"),
    ],
)
def test_outcome_of_a_failed_call(status, reason, outcome):
    assert outcome_of(status, reason) == outcome
    assert outcome in OUTCOMES


@pytest.mark.parametrize(
    ("outcome", "tone"),
    [
        ("busy", "busy"),
        ("declined", "busy"),
        ("no-answer", "error"),
        ("failed", "error"),
        ("answered", None),
        ("cancelled", None),
    ],
)
def test_feedback_tone_of_each_outcome(outcome, tone):
    assert feedback_tone(outcome) == tone


def test_every_outcome_has_a_known_tone_or_none():
    assert {feedback_tone(outcome) for outcome in OUTCOMES} == {"busy", "error", None}
