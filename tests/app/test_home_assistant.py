"""Home Assistant over MQTT without a broker: topics, discovery configs, states, rings, commands,
the outbox's order and limits, and the reconnect backoff (intercom.app.home_assistant)."""

from __future__ import annotations

import json
import random

import pytest

from intercom.app.call_record import LastCall
from intercom.app.home_assistant import (
    CALL_STATES,
    MAX_RINGS,
    REGISTRATION_STATES,
    RING_MAX_AGE,
    Command,
    HomeAssistant,
    Message,
    Outbox,
    base_topic,
    node_id,
    reconnect_delay,
)
from intercom.app.outcome import OUTCOMES
from intercom.app.settings import Settings
from intercom.app.status import DoorbellStatus

VERSION = "1.2.3"
BASE = "intercom/front"


def door(**overrides: object) -> HomeAssistant:
    fields: dict[str, object] = {"mqtt_topic": BASE, "name": "Front door", "door_relay_pin": 22}
    fields.update(overrides)
    return HomeAssistant(Settings(**fields), "pi-door", VERSION)  # type: ignore[arg-type]


def configs(ha: HomeAssistant) -> dict[str, dict[str, object]]:
    return {m.topic: json.loads(m.payload) for m in ha.discovery() if m.payload}


def status(**overrides: object) -> DoorbellStatus:
    fields: dict[str, object] = {
        "registration": "registered", "last_status": 200, "call": "idle",
        "last_call": LastCall(), "opened_count": 0, "locked_out": False,
    }  # fmt: skip
    fields.update(overrides)
    return DoorbellStatus(**fields)  # type: ignore[arg-type]


# -- topics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "host", "expected"),
    [
        ("", "doorpi", "intercom/doorpi"),
        ("", "doorpi.fritz.box", "intercom/doorpi"),  # the host's own name, not the domain
        ("", "door pi+#", "intercom/door-pi--"),  # never a wildcard or blank in a topic
        ("", "", "intercom/door"),
        ("home/doors/front", "doorpi", "home/doors/front"),
    ],
)
def test_base_topic(configured: str, host: str, expected: str) -> None:
    assert base_topic(configured, host) == expected


def test_default_topic_comes_from_the_host_name() -> None:
    ha = HomeAssistant(Settings(), "doorpi", VERSION)
    assert ha.topics.base == "intercom/doorpi"
    assert ha.topics.node == "intercom_doorpi"
    assert ha.topics.prefix == "homeassistant"


@pytest.mark.parametrize(
    ("base", "expected"),
    [("intercom/front", "intercom_front"), ("a.b/c-d_e", "a_b_c-d_e"), ("x/ä", "x__")],
)
def test_node_id_holds_only_what_discovery_allows(base: str, expected: str) -> None:
    assert node_id(base) == expected


def test_every_topic_of_a_door() -> None:
    t = door(mqtt_discovery_prefix="ha").topics
    assert (t.availability, t.ring, t.open_door, t.birth) == (
        "intercom/front/availability", "intercom/front/ring", "intercom/front/door/open",
        "ha/status",
    )  # fmt: skip
    assert t.config("event", "ring") == "ha/event/intercom_front/ring/config"
    assert door(mqtt_discovery_prefix="ha").subscriptions() == (t.open_door, t.birth)


# -- discovery ----------------------------------------------------------------------------------


def test_discovery_configs_are_retained_and_name_one_device() -> None:
    ha = door()
    messages = ha.discovery()
    assert all(m.retain and m.qos == 1 for m in messages)
    found = configs(ha)
    assert sorted(found) == [
        "homeassistant/button/intercom_front/open_door/config",
        "homeassistant/event/intercom_front/ring/config",
        "homeassistant/sensor/intercom_front/call/config",
        "homeassistant/sensor/intercom_front/last_call/config",
        "homeassistant/sensor/intercom_front/registration/config",
    ]
    device = {
        "identifiers": ["intercom_front"], "name": "Front door", "manufacturer": "intercom",
        "model": "SIP door intercom", "sw_version": VERSION,
    }  # fmt: skip
    for config in found.values():
        assert config["device"] == device
        assert config["availability_topic"] == "intercom/front/availability"
        assert (config["payload_available"], config["payload_not_available"]) == (
            "online", "offline",
        )  # fmt: skip
    unique = [config["unique_id"] for config in found.values()]
    assert len(set(unique)) == len(unique) == 5


def test_the_doorbell_event() -> None:
    config = configs(door())["homeassistant/event/intercom_front/ring/config"]
    assert config["device_class"] == "doorbell"
    assert config["event_types"] == ["ring"]
    assert config["state_topic"] == "intercom/front/ring"
    assert config["unique_id"] == "intercom_front_ring"


def test_the_open_door_button() -> None:
    config = configs(door())["homeassistant/button/intercom_front/open_door/config"]
    assert config["name"] == "Open door"
    assert config["command_topic"] == "intercom/front/door/open"
    assert config["payload_press"] == "PRESS"


def test_without_a_relay_the_button_config_is_emptied_to_remove_it() -> None:
    ha = door(door_relay_pin=None)
    (button,) = [m for m in ha.discovery() if "/button/" in m.topic]
    assert button == Message("homeassistant/button/intercom_front/open_door/config", b"", True)
    assert not any("/button/" in topic for topic in configs(ha))


@pytest.mark.parametrize(
    ("object_id", "field", "options"),
    [
        ("registration", "state", REGISTRATION_STATES),
        ("call", "state", CALL_STATES),
        ("last_call", "outcome", OUTCOMES),
    ],
)
def test_sensors_follow_the_status_objects(
    object_id: str, field: str, options: tuple[str, ...]
) -> None:
    config = configs(door())[f"homeassistant/sensor/intercom_front/{object_id}/config"]
    assert config["state_topic"] == config["json_attributes_topic"] == f"{BASE}/{object_id}"
    assert config["value_template"] == f"{{{{ value_json.{field} }}}}"
    assert config["device_class"] == "enum"
    assert config["options"] == list(options)


def test_states_are_the_status_contract_objects_retained() -> None:
    last = LastCall("answered", "PCMU", 12.3, 600, 598, 2, 1.4)
    shown = door().state(
        status(registration="failed", last_status=503, registration_reason="503; retrying",
               call="ringing", last_call=last)
    )  # fmt: skip
    assert [m.topic for m in shown] == [f"{BASE}/registration", f"{BASE}/call", f"{BASE}/last_call"]
    assert all(m.retain for m in shown)
    registration, call, last_call = (json.loads(m.payload) for m in shown)
    assert registration == {"state": "failed", "last_status": 503, "reason": "503; retrying"}
    assert call == {"state": "ringing"}
    assert last_call == {
        "outcome": "answered", "codec": "PCMU", "duration": 12.3, "packets_sent": 600,
        "packets_received": 598, "packets_lost": 2, "jitter_ms": 1.4,
    }  # fmt: skip


def test_availability_is_retained() -> None:
    ha = door()
    assert ha.availability(True) == Message(f"{BASE}/availability", b"online", True)
    assert ha.availability(False) == Message(f"{BASE}/availability", b"offline", True)


def test_a_ring_is_an_event_never_retained() -> None:
    ring = door().ring(1_800_000_000.0)
    assert ring.topic == f"{BASE}/ring" and not ring.retain and ring.qos == 1
    payload = json.loads(ring.payload)
    assert payload["event_type"] == "ring"
    assert payload["at"][:4] == "2027" and payload["at"][-6] in "+-"  # ISO 8601 with its offset


# -- commands -----------------------------------------------------------------------------------


def test_press_on_the_command_topic_opens_the_door() -> None:
    assert door().command(f"{BASE}/door/open", b"PRESS", False) is Command.OPEN_DOOR


def test_a_retained_press_never_opens_the_door(caplog: pytest.LogCaptureFixture) -> None:
    assert door().command(f"{BASE}/door/open", b"PRESS", True) is None
    assert "retained" in caplog.text


@pytest.mark.parametrize("payload", [b"", b"press", b"OPEN", b"PRESS PRESS"])
def test_another_payload_is_ignored(payload: bytes) -> None:
    assert door().command(f"{BASE}/door/open", payload, False) is None


def test_home_assistant_birth_asks_for_discovery_again() -> None:
    ha = door()
    assert ha.command("homeassistant/status", b"online", False) is Command.HOME_ASSISTANT_ONLINE
    assert ha.command("homeassistant/status", b"offline", False) is None
    assert ha.command("homeassistant/status", b"online", True) is None  # sent on connect anyway


def test_other_topics_are_ignored() -> None:
    assert door().command("intercom/other/door/open", b"PRESS", False) is None


# -- the outbox ---------------------------------------------------------------------------------


def drain(outbox: Outbox, now: float) -> list[Message]:
    sent = []
    while (message := outbox.next(now)) is not None:
        outbox.sent(message)
        sent.append(message)
    return sent


def test_outbox_sends_setup_then_rings_then_states() -> None:
    ha, outbox = door(), Outbox()
    outbox.state(ha.state(status()))
    outbox.ring(ha.ring(0.0), 0.0)
    outbox.setup([*ha.discovery(), ha.availability(True)])
    sent = drain(outbox, 1.0)
    kinds = ["config" if m.topic.endswith("/config") else m.topic.rsplit("/", 1)[1] for m in sent]
    assert kinds == ["config"] * 5 + ["availability", "ring", "registration", "call", "last_call"]
    assert drain(outbox, 2.0) == []


def test_states_are_coalesced_to_the_latest() -> None:
    ha, outbox = door(), Outbox()
    for call in ("calling", "ringing", "connected"):
        outbox.state(ha.state(status(call=call)))
    sent = drain(outbox, 0.0)
    assert [json.loads(m.payload) for m in sent if m.topic.endswith("/call")] == [
        {"state": "connected"}
    ]
    outbox.state(ha.state(status(call="connected")))  # unchanged: nothing to send
    assert drain(outbox, 0.0) == []


def test_a_state_changed_while_it_was_being_sent_goes_out_again() -> None:
    ha, outbox = door(), Outbox()
    outbox.state(ha.state(status(call="calling"))[1:2])
    first = outbox.next(0.0)
    assert first is not None
    outbox.state(ha.state(status(call="ringing"))[1:2])  # arrives during the publication
    outbox.sent(first)
    again = outbox.next(0.0)
    assert again is not None and json.loads(again.payload) == {"state": "ringing"}


def test_resend_all_after_a_reconnect() -> None:
    ha, outbox = door(), Outbox()
    outbox.setup([ha.availability(True)])
    outbox.state(ha.state(status()))
    assert len(drain(outbox, 0.0)) == 4
    outbox.resend_all()
    assert len(drain(outbox, 0.0)) == 4


def test_a_ring_is_kept_until_sent() -> None:
    ha, outbox = door(), Outbox()
    ring = ha.ring(0.0)
    outbox.ring(ring, 10.0)
    assert outbox.next(10.0) is ring
    assert outbox.next(20.0) is ring  # not confirmed (the connection broke): offered again
    outbox.sent(ring)
    assert outbox.next(20.0) is None and outbox.pending == 0


def test_rings_older_than_a_minute_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    ha, outbox = door(), Outbox()
    old, fresh = ha.ring(0.0), ha.ring(30.0)
    outbox.ring(old, 100.0)
    outbox.ring(fresh, 130.0)
    assert outbox.next(100.0 + RING_MAX_AGE) is old  # a minute exactly: still news
    assert outbox.next(100.0 + RING_MAX_AGE + 0.1) is fresh
    assert outbox.dropped == 1 and "ring dropped" in caplog.text
    outbox.sent(fresh)
    assert outbox.pending == 0


def test_at_most_max_rings_wait() -> None:
    ha, outbox = door(), Outbox()
    rings = [ha.ring(float(n)) for n in range(MAX_RINGS + 2)]
    for n, ring in enumerate(rings):
        outbox.ring(ring, float(n))
    assert outbox.pending == MAX_RINGS and outbox.dropped == 2
    assert drain(outbox, float(MAX_RINGS)) == rings[2:]


# -- reconnecting -------------------------------------------------------------------------------


def test_reconnect_delay_doubles_to_a_minute() -> None:
    assert [reconnect_delay(n, 0.999999) for n in range(8)] == pytest.approx(
        [1, 2, 4, 8, 16, 32, 60, 60], abs=1e-3
    )
    assert reconnect_delay(10_000, 0.999999) == pytest.approx(60, abs=1e-3)


def test_reconnect_delay_is_jittered_between_half_and_all() -> None:
    rng = random.Random(7)
    delays = [reconnect_delay(3, rng.random()) for _ in range(200)]
    assert all(4.0 <= d < 8.0 for d in delays)
    assert max(delays) - min(delays) > 3.0  # spread, not one value
    assert reconnect_delay(0, 0.0) == 0.5
