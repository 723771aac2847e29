"""Tests for intercom.sip.auth (client-side SIP Digest authentication)."""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections.abc import Callable

import pytest

from intercom.sip.auth import (
    SUPPORTED_ALGORITHMS,
    AuthFailed,
    AuthHeader,
    Challenge,
    DigestClient,
    authorization_value,
    choose_challenge,
    digest_response,
    parse_challenges,
)

# RFC 2617 §3.5 and RFC 7616 §3.9.1 worked examples. Note RFC 7616 uses "Circle of Life"
# (lower-case "of", see erratum 4495) where RFC 2617 uses "Circle Of Life".
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def _rfc7616_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


def _h(name: str, data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.new(name, raw).hexdigest()


def _auth_params(value: str) -> dict[str, str]:
    """Independent, test-only reading of an Authorization value."""
    assert value.startswith("Digest ")
    pairs = re.findall(r'([a-z]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', value[len("Digest ") :])
    return {k: re.sub(r"\\(.)", r"\1", quoted) if quoted else bare for k, quoted, bare in pairs}


def _only(header_value: str) -> Challenge:
    challenges = parse_challenges([header_value])
    assert len(challenges) == 1
    return challenges[0]


def _cnonces() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"cn{next(counter)}"


# ------------------------------------------------------------------ known answers


def test_rfc2617_example_response_and_header():
    challenge = _only(RFC2617_CHALLENGE)
    response = digest_response(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle Of Life", cnonce="0a4f113b", nc=1, qop="auth",
    )  # fmt: skip
    assert response == "6629fae49393a05397450978507c4ef1"
    value = authorization_value(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle Of Life", cnonce="0a4f113b", nc=1,
    )  # fmt: skip
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
    ids=["md5", "sha-256"],
)
def test_rfc7616_examples(algorithm, expected):
    challenge = _only(_rfc7616_challenge(algorithm))
    value = authorization_value(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle of Life", cnonce=RFC7616_CNONCE, nc=1,
    )  # fmt: skip
    params = _auth_params(value)
    assert params["response"] == expected
    assert params["algorithm"] == algorithm
    assert params["qop"] == "auth"
    assert params["nc"] == "00000001"
    assert params["cnonce"] == RFC7616_CNONCE
    assert params["opaque"] == RFC7616_OPAQUE


def test_sip_register_rfc2069_style_known_answer():
    challenge = _only('Digest realm="asterisk", nonce="5f3a1c9e", algorithm=MD5')
    ha1 = _h("md5", "door:asterisk:s3cret")
    ha2 = _h("md5", "REGISTER:sip:pbx.example.com")
    expected = _h("md5", f"{ha1}:5f3a1c9e:{ha2}")
    value = authorization_value(
        challenge, method="REGISTER", uri="sip:pbx.example.com", username="door",
        password="s3cret", cnonce="unused", nc=1,
    )  # fmt: skip
    assert value == (
        'Digest username="door", realm="asterisk", nonce="5f3a1c9e", '
        f'uri="sip:pbx.example.com", response="{expected}", algorithm=MD5'
    )


def test_sess_and_auth_int_known_answer():
    challenge = _only('Digest realm="r", nonce="N", algorithm=SHA-256-sess, qop="auth-int"')
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    ha1 = _h("sha256", f"{_h('sha256', 'u:r:p')}:N:CN")
    ha2 = _h("sha256", f"INVITE:sip:bob@example.com:{_h('sha256', body)}")
    expected = _h("sha256", f"{ha1}:N:0000000a:CN:auth-int:{ha2}")
    value = authorization_value(
        challenge, method="INVITE", uri="sip:bob@example.com", username="u", password="p",
        cnonce="CN", nc=10, body=body,
    )  # fmt: skip
    params = _auth_params(value)
    assert (params["response"], params["qop"], params["nc"]) == (expected, "auth-int", "0000000a")
    assert params["algorithm"] == "SHA-256-sess"


@pytest.mark.skipif("SHA-512-256" not in SUPPORTED_ALGORITHMS, reason="no SHA-512/256")
def test_sha512_256_known_answer():
    challenge = _only('Digest realm="r", nonce="N", algorithm=SHA-512-256, qop="auth"')
    ha1, ha2 = _h("sha512_256", "u:r:p"), _h("sha512_256", "OPTIONS:sip:x")
    expected = _h("sha512_256", f"{ha1}:N:00000001:CN:auth:{ha2}")
    got = digest_response(
        challenge, method="OPTIONS", uri="sip:x", username="u", password="p",
        cnonce="CN", nc=1, qop="auth",
    )  # fmt: skip
    assert got == expected


def test_md5_sess_without_qop_sends_cnonce():
    challenge = _only('Digest realm="r", nonce="N", algorithm=MD5-sess')
    params = _auth_params(
        authorization_value(
            challenge, method="BYE", uri="sip:x", username="u", password="p", cnonce="C", nc=1
        )
    )
    ha1 = _h("md5", f"{_h('md5', 'u:r:p')}:N:C")
    assert params["response"] == _h("md5", f"{ha1}:N:{_h('md5', 'BYE:sip:x')}")
    assert params["cnonce"] == "C"
    assert "nc" not in params and "qop" not in params


def test_digest_response_rejects_unsupported():
    challenge = _only('Digest realm="r", nonce="n", algorithm=AKAv1-MD5')
    with pytest.raises(ValueError, match="AKAV1-MD5"):
        digest_response(
            challenge, method="GET", uri="/", username="u", password="p", cnonce="c",
            nc=1, qop="auth",
        )  # fmt: skip


# ------------------------------------------------------------------ authorization_value


@pytest.mark.parametrize(
    ("qop_param", "expected_qop"),
    [('qop="auth-int,auth"', "auth"), ('qop="auth-int"', "auth-int"), ("qop=auth", "auth")],
    ids=["prefers-auth", "auth-int-only", "unquoted"],
)
def test_authorization_value_picks_qop(qop_param, expected_qop):
    challenge = _only(f'Digest realm="r", nonce="n", {qop_param}')
    params = _auth_params(
        authorization_value(
            challenge, method="GET", uri="/", username="u", password="p", cnonce="c", nc=3
        )
    )
    assert params["qop"] == expected_qop
    assert params["nc"] == "00000003"


def test_authorization_value_quotes_and_omits():
    challenge = _only('Digest realm="a \\"b\\"", nonce="n"')
    value = authorization_value(
        challenge, method="GET", uri="/", username='we"ird\\user', password="p", cnonce="c", nc=1
    )
    assert 'username="we\\"ird\\\\user"' in value
    assert 'realm="a \\"b\\""' in value
    assert _auth_params(value)["username"] == 'we"ird\\user'
    for absent in ("cnonce=", "qop=", "nc=", "opaque="):
        assert absent not in value


# ------------------------------------------------------------------ parse_challenges

PARSE_CASES = [
    (
        'Digest realm="asterisk",nonce="1700000000/3f2c7a0e9b5d",opaque="4b1c2d3e",'
        'algorithm=md5,qop="auth"',
        ("asterisk", "1700000000/3f2c7a0e9b5d", "MD5", ("auth",), "4b1c2d3e", False),
    ),
    (
        'Digest algorithm=MD5, realm="asterisk", nonce="6a1e3f2b"',
        ("asterisk", "6a1e3f2b", "MD5", (), None, False),
    ),
    (
        'Digest realm="192.168.1.10", nonce="c0ffee00-1234-4abc-9def-0123456789ab", '
        'algorithm=MD5, qop="auth"',
        ("192.168.1.10", "c0ffee00-1234-4abc-9def-0123456789ab", "MD5", ("auth",), None, False),
    ),
    (
        'Digest realm="sip.example.org", nonce="ZbC8kGW3wQ9xZ2m1cGxqZ3R5b2Y=", '
        'qop="auth,auth-int", algorithm=SHA-256',
        (
            "sip.example.org",
            "ZbC8kGW3wQ9xZ2m1cGxqZ3R5b2Y=",
            "SHA-256",
            ("auth", "auth-int"),
            None,
            False,
        ),
    ),
    (
        'Digest realm="fritz.box", nonce="0123ABCD4567EF89"',
        ("fritz.box", "0123ABCD4567EF89", "MD5", (), None, False),
    ),
    (
        'Digest realm="Door, Building A", nonce="a,b", qop="auth"',
        ("Door, Building A", "a,b", "MD5", ("auth",), None, False),
    ),
    (
        'Digest realm="say \\"hi\\" \\\\ bye", nonce="n"',
        ('say "hi" \\ bye', "n", "MD5", (), None, False),
    ),
    (
        'DIGEST REALM="Upper", NONCE="N", ALGORITHM=sha-256, QOP="AUTH", Opaque="O"',
        ("Upper", "N", "SHA-256", ("auth",), "O", False),
    ),
    (
        '  digest   realm = "sp"  ,nonce="n"   ,  stale=TRUE , algorithm="md5-sess"  ',
        ("sp", "n", "MD5-sess", (), None, True),
    ),
    (
        'Digest realm="r", nonce="n", foo=bar, userhash=true, stale=false',
        ("r", "n", "MD5", (), None, False),
    ),
]


@pytest.mark.parametrize(
    ("header", "expected"),
    PARSE_CASES,
    ids=[
        "asterisk-pjsip",
        "asterisk-chan-sip",
        "freeswitch",
        "kamailio",
        "fritzbox",
        "quoted-commas",
        "escaped-quotes",
        "upper-case",
        "extra-spaces-stale",
        "unknown-params",
    ],
)
def test_parse_challenges_styles(header, expected):
    c = _only(header)
    assert (c.realm, c.nonce, c.algorithm, c.qop, c.opaque, c.stale) == expected
    assert c.scheme == "Digest"


def test_parse_keeps_every_param_lowercased():
    c = _only('Digest Realm="r", nonce="n", Foo=Bar, X-Thing="q v"')
    assert dict(c.params) == {"realm": "r", "nonce": "n", "foo": "Bar", "x-thing": "q v"}


@pytest.mark.parametrize(
    "headers",
    [
        [
            'Digest realm="r", nonce="n-md5", algorithm=MD5, qop="auth"',
            'Digest realm="r", nonce="n-sha", algorithm=SHA-256, qop="auth"',
        ],
        [
            'Digest realm="r", nonce="n-md5", algorithm=MD5, qop="auth", '
            'Digest realm="r", nonce="n-sha", algorithm=SHA-256, qop="auth"'
        ],
        [
            'Basic realm="r", Digest realm="r", nonce="n-md5", algorithm=MD5, '
            'Negotiate abc==, Digest realm="r", nonce="n-sha", algorithm=SHA-256'
        ],
    ],
    ids=["separate-headers", "one-header", "mixed-schemes"],
)
def test_several_challenges_choose_sha256(headers):
    challenges = parse_challenges(headers)
    assert [c.nonce for c in challenges] == ["n-md5", "n-sha"]
    chosen = choose_challenge(challenges)
    assert chosen is not None
    assert (chosen.nonce, chosen.algorithm) == ("n-sha", "SHA-256")


def test_choose_prefers_topmost_on_tie():
    challenges = parse_challenges(
        [
            'Digest realm="a", nonce="1", algorithm=SHA-256',
            'Digest realm="b", nonce="2", algorithm=SHA-256',
        ]
    )
    chosen = choose_challenge(challenges)
    assert chosen is not None and chosen.realm == "a"


@pytest.mark.parametrize(
    "header",
    [
        'Digest realm="ims", nonce="n", algorithm=AKAv1-MD5',
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="r", nonce="n", qop="auth-conf"',
    ],
    ids=["aka", "unknown-algorithm", "unknown-qop-only"],
)
def test_choose_unsupported_only_is_none(header):
    challenges = parse_challenges([header])
    assert len(challenges) == 1
    assert choose_challenge(challenges) is None
    assert choose_challenge([]) is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "garbage",
        '=== ,,, "',
        'Digest realm="unterminated, nonce="n',
        "Digest",
        'Digest nonce="n"',
        'Digest realm="r"',
        'realm="r", nonce="n"',
        'Digest realm="r", realm="s", nonce="n"',
        'Basic realm="r"',
        "Bearer",
    ],
    ids=[
        "empty",
        "blank",
        "word",
        "punctuation",
        "unterminated-quote",
        "scheme-only",
        "no-realm",
        "no-nonce",
        "no-scheme",
        "duplicate-param",
        "basic",
        "bearer",
    ],
)
def test_parse_garbage_gives_nothing(header):
    assert parse_challenges([header]) == []


def test_parse_resynchronises_after_malformed_challenge():
    challenges = parse_challenges(
        ['Digest realm="r" "stray", nonce="n1", Digest realm="r2", nonce="n2"']
    )
    assert [(c.realm, c.nonce) for c in challenges] == [("r2", "n2")]


# ------------------------------------------------------------------ DigestClient

CHALLENGE_401 = 'Digest realm="pbx", nonce="nonce-1", algorithm=MD5, qop="auth", opaque="op"'


def _client(username: str | None = "door", password: str | None = "s3cret") -> DigestClient:
    return DigestClient(username, password, cnonce_factory=_cnonces())


def _expected_md5(method: str, uri: str, realm: str, nonce: str, nc: int, cnonce: str) -> str:
    ha1 = _h("md5", f"door:{realm}:s3cret")
    return _h("md5", f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{_h('md5', f'{method}:{uri}')}")


@pytest.mark.parametrize(
    ("status", "header_name"),
    [(401, "Authorization"), (407, "Proxy-Authorization")],
    ids=["401", "407"],
)
def test_client_answers_with_matching_header(status, header_name):
    result = _client().answer_challenge(
        status, [CHALLENGE_401], method="INVITE", uri="sip:bob@pbx", previous_attempt=False
    )
    assert isinstance(result, AuthHeader)
    assert result.name == header_name
    params = _auth_params(result.value)
    assert params["response"] == _expected_md5("INVITE", "sip:bob@pbx", "pbx", "nonce-1", 1, "cn1")
    assert (params["username"], params["uri"], params["opaque"]) == ("door", "sip:bob@pbx", "op")


def test_client_rejects_other_status():
    with pytest.raises(ValueError, match="403"):
        _client().answer_challenge(
            403, [CHALLENGE_401], method="INVITE", uri="sip:x", previous_attempt=False
        )


def test_client_nonce_count_increments_and_resets():
    client = _client()

    def answer(header: str) -> dict[str, str]:
        result = client.answer_challenge(
            401, [header], method="REGISTER", uri="sip:pbx", previous_attempt=False
        )
        assert isinstance(result, AuthHeader)
        return _auth_params(result.value)

    first, second = answer(CHALLENGE_401), answer(CHALLENGE_401)
    assert (first["nc"], second["nc"]) == ("00000001", "00000002")
    assert (first["cnonce"], second["cnonce"]) == ("cn1", "cn2")  # fresh per request
    assert second["response"] == _expected_md5("REGISTER", "sip:pbx", "pbx", "nonce-1", 2, "cn2")
    third = answer(CHALLENGE_401.replace("nonce-1", "nonce-2"))
    assert (third["nc"], third["nonce"], third["cnonce"]) == ("00000001", "nonce-2", "cn3")


def test_sess_keeps_the_cnonce_its_ha1_is_bound_to():
    client = _client()
    sess = CHALLENGE_401.replace("MD5", "MD5-sess")
    client.answer_challenge(401, [sess], method="REGISTER", uri="sip:pbx", previous_attempt=False)
    [again] = client.preemptive(method="REGISTER", uri="sip:pbx")
    params = _auth_params(again.value)
    assert (params["nc"], params["cnonce"]) == ("00000002", "cn1")


def test_client_stale_is_retried_without_failure():
    client = _client()
    first = client.answer_challenge(
        401, [CHALLENGE_401], method="REGISTER", uri="sip:pbx", previous_attempt=False
    )
    assert isinstance(first, AuthHeader)
    stale = 'Digest realm="pbx", nonce="nonce-2", algorithm=MD5, qop="auth", stale=true'
    for nonce_header in (stale, stale.replace("nonce-2", "nonce-3")):
        again = client.answer_challenge(
            401, [nonce_header], method="REGISTER", uri="sip:pbx", previous_attempt=True
        )
        assert isinstance(again, AuthHeader), again
        params = _auth_params(again.value)
        assert params["nonce"] in nonce_header
        assert params["nc"] == "00000001"


@pytest.mark.parametrize("status", [401, 407], ids=["401", "407"])
def test_client_wrong_password_fails_after_one_retry(status):
    client = _client()
    first = client.answer_challenge(
        status, [CHALLENGE_401], method="REGISTER", uri="sip:pbx", previous_attempt=False
    )
    assert isinstance(first, AuthHeader)
    second = client.answer_challenge(
        status,
        [CHALLENGE_401.replace("nonce-1", "nonce-2")],
        method="REGISTER",
        uri="sip:pbx",
        previous_attempt=True,
    )
    assert second == AuthFailed(status=status, realm="pbx", reason="wrong credentials")
    assert client.preemptive(method="REGISTER", uri="sip:pbx") == []


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), ("door", None), (None, "s3cret")],
    ids=["neither", "no-password", "no-username"],
)
def test_client_without_credentials_fails(username, password):
    result = _client(username, password).answer_challenge(
        407, [CHALLENGE_401], method="INVITE", uri="sip:x", previous_attempt=False
    )
    assert result == AuthFailed(status=407, realm="pbx", reason="no credentials configured")


def test_client_no_supported_algorithm_fails():
    result = _client().answer_challenge(
        401,
        ['Digest realm="ims", nonce="n", algorithm=AKAv1-MD5'],
        method="REGISTER",
        uri="sip:ims",
        previous_attempt=False,
    )
    assert isinstance(result, AuthFailed)
    assert (result.status, result.realm) == (401, "ims")
    assert result.reason.startswith("no supported algorithm")
    assert "AKAV1-MD5" in result.reason


def test_client_uses_strongest_challenge():
    result = _client().answer_challenge(
        401,
        [
            'Digest realm="pbx", nonce="a", algorithm=MD5',
            'Digest realm="pbx", nonce="b", algorithm=SHA-256',
        ],
        method="REGISTER",
        uri="sip:pbx",
        previous_attempt=False,
    )
    assert isinstance(result, AuthHeader)
    params = _auth_params(result.value)
    assert (params["algorithm"], params["nonce"]) == ("SHA-256", "b")


def test_preemptive_reuses_latest_challenge_per_realm_and_kind():
    client = _client()
    assert client.preemptive(method="REGISTER", uri="sip:pbx") == []
    client.answer_challenge(
        401, [CHALLENGE_401], method="INVITE", uri="sip:bob@pbx", previous_attempt=False
    )
    client.answer_challenge(
        407,
        ['Digest realm="proxy", nonce="p-1", qop="auth"'],
        method="INVITE",
        uri="sip:bob@pbx",
        previous_attempt=False,
    )
    headers = client.preemptive(method="BYE", uri="sip:bob@192.0.2.7")
    assert [h.name for h in headers] == ["Authorization", "Proxy-Authorization"]
    www, proxy = (_auth_params(h.value) for h in headers)
    assert (www["realm"], www["nc"], www["uri"]) == ("pbx", "00000002", "sip:bob@192.0.2.7")
    assert www["response"] == _expected_md5("BYE", "sip:bob@192.0.2.7", "pbx", "nonce-1", 2, "cn3")
    assert (www["cnonce"], proxy["cnonce"]) == ("cn3", "cn4")
    assert (proxy["realm"], proxy["nonce"], proxy["nc"]) == ("proxy", "p-1", "00000002")
    again = client.preemptive(method="BYE", uri="sip:bob@192.0.2.7")
    assert [_auth_params(h.value)["nc"] for h in again] == ["00000003", "00000003"]
    [proxy_only] = client.preemptive(method="BYE", uri="sip:x", skip={"Authorization"})
    assert proxy_only.name == "Proxy-Authorization"


def test_forget_drops_cached_challenges_and_counts():
    client = _client()
    client.answer_challenge(
        401, [CHALLENGE_401], method="REGISTER", uri="sip:pbx", previous_attempt=False
    )
    client.forget()
    assert client.preemptive(method="REGISTER", uri="sip:pbx") == []
    result = client.answer_challenge(
        401, [CHALLENGE_401], method="REGISTER", uri="sip:pbx", previous_attempt=False
    )
    assert isinstance(result, AuthHeader)
    assert _auth_params(result.value)["nc"] == "00000001"


def test_secrets_stay_out_of_repr_and_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="intercom.sip.auth")
    client = DigestClient("door", "hunter2-secret", cnonce_factory=_cnonces())
    header = client.answer_challenge(
        401, [CHALLENGE_401], method="REGISTER", uri="sip:pbx", previous_attempt=False
    )
    assert isinstance(header, AuthHeader)
    response = _auth_params(header.value)["response"]
    client.answer_challenge(
        401, [CHALLENGE_401], method="REGISTER", uri="sip:pbx", previous_attempt=True
    )
    for text in (repr(header), str(header), repr(client), caplog.text):
        assert "hunter2-secret" not in text
        assert response not in text
    assert repr(header) == "AuthHeader(Authorization, <redacted>)"
    assert "wrong credentials" in caplog.text  # the log really was captured
