"""Codec registry: RTP parameters (RFC 3551), factories, INTERCOM_CODECS parsing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from intercom.media.codecs import CODECS, CodecInfo, make_decoder, make_encoder, parse_codec_list
from intercom.media.pcm import frame_samples
from tests.pcm_arrays import pcm


def tone(sample_rate: int) -> bytes:
    t = np.arange(frame_samples(sample_rate)) / sample_rate
    return pcm((6000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16))


def test_rtp_parameters_follow_rfc_3551():
    expected = {
        "PCMU": CodecInfo("PCMU", 0, 8000, 8000, 160, 160),
        "PCMA": CodecInfo("PCMA", 8, 8000, 8000, 160, 160),
        "G722": CodecInfo("G722", 9, 8000, 16000, 320, 160),
    }
    assert expected == CODECS
    for info in CODECS.values():
        assert info.frame_samples == frame_samples(info.sample_rate)
        assert info.timestamp_step == info.clock_rate // 50  # 20 ms of RTP clock


def test_codec_info_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CODECS["PCMU"].payload_type = 3  # type: ignore[misc]


@pytest.mark.parametrize(("name", "payload_bytes"), [("PCMU", 160), ("PCMA", 160), ("G722", 160)])
def test_encoder_and_decoder_frame_sizes(name, payload_bytes):
    encoder, decoder = make_encoder(name), make_decoder(name)
    assert encoder.info is CODECS[name] and decoder.info is CODECS[name]
    frame = tone(encoder.info.sample_rate)
    payload = encoder.encode(frame)
    assert isinstance(payload, bytes) and len(payload) == payload_bytes
    decoded = decoder.decode(payload)
    assert type(decoded) is bytes and len(decoded) == len(frame)


@pytest.mark.parametrize(("name", "silence"), [("PCMU", b"\xff"), ("PCMA", b"\xd5")])
def test_g711_factories_pick_the_right_law(name, silence):
    assert make_encoder(name).encode(bytes(320)) == silence * 160


def test_names_are_case_insensitive():
    assert make_encoder("pcmu").info.name == "PCMU"
    assert make_decoder("g722").info.name == "G722"


def test_each_call_has_fresh_state():
    frame = tone(16000)
    used = make_encoder("G722")
    first = used.encode(frame)
    assert used.encode(frame) != first  # adaptive state moved on
    assert make_encoder("G722").encode(frame) == first


def test_unknown_codec_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown codec 'OPUS' \(known: PCMU, PCMA, G722\)"):
        make_encoder("OPUS")
    with pytest.raises(ValueError, match="unknown codec 'G729'"):
        make_decoder("G729")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("G722,PCMU,PCMA", ("G722", "PCMU", "PCMA")),
        ("pcma", ("PCMA",)),
        (" pcmu , G722 ", ("PCMU", "G722")),
        ("PCMU,,PCMA,", ("PCMU", "PCMA")),
        ("PCMA,pcma,PCMU", ("PCMA", "PCMU")),
    ],
)
def test_parse_codec_list(text, expected):
    assert parse_codec_list(text) == expected


def test_parse_codec_list_rejects_unknown_and_empty():
    with pytest.raises(ValueError, match=r"unknown codec 'opus' \(known: PCMU, PCMA, G722\)"):
        parse_codec_list("G722,opus")
    with pytest.raises(ValueError, match="no codec named in ' , '"):
        parse_codec_list(" , ")
