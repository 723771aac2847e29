"""Client-side HTTP Digest authentication for SIP (sans-IO, stdlib only).

Follows RFC 3261 §22 (SIP use of Digest, UAC behaviour on 401/407), RFC 2617 §3.2 (challenge
syntax, ``response`` computation with and without ``qop``, ``-sess`` algorithms), RFC 7616 §3.3
to §3.4 (SHA-256 / SHA-512-256, quoted-string rules) and RFC 8760 §2 (several challenges, one per
algorithm, in one 401/407). Randomness (the client nonce) is injected by the caller.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from intercom.sip.grammar import QUOTED_STRING, quote, unquote

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "AuthFailed",
    "AuthHeader",
    "Challenge",
    "DigestClient",
    "authorization_value",
    "choose_challenge",
    "digest_response",
    "parse_challenges",
]

# IANA "Hash Algorithms for HTTP Digest Authentication" name -> hashlib name.
_HASHES = {"SHA-512-256": "sha512_256", "SHA-256": "sha256", "MD5": "md5"}


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:  # e.g. an OpenSSL build without SHA-512/256
        return False
    return True


SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(
    name for base, hl in _HASHES.items() if _hash_available(hl) for name in (base, f"{base}-sess")
)
"""Algorithms this module can answer, strongest first."""

_CANONICAL = {name.upper(): name for name in SUPPORTED_ALGORITHMS}
_QOPS = ("auth", "auth-int")  # our order of preference


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed Digest challenge from a WWW-Authenticate / Proxy-Authenticate value."""

    scheme: str
    realm: str
    nonce: str
    algorithm: str  # canonical spelling when known ("MD5-sess"), else upper-case; "MD5" if absent
    qop: tuple[str, ...]
    opaque: str | None
    stale: bool
    params: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, repr=False
    )


@dataclass(frozen=True, slots=True, repr=False)
class AuthHeader:
    """A header to add to the retried request; its value is a secret-derived credential."""

    name: str
    value: str

    def __repr__(self) -> str:
        return f"AuthHeader({self.name}, <redacted>)"


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """Authentication cannot (or should not) be attempted again."""

    status: int
    realm: str
    reason: str


# --------------------------------------------------------------------------- parsing

_LEX = re.compile(
    rf'\s*(?:(?P<comma>,)|(?P<eq>=)|(?P<quoted>{QUOTED_STRING})|(?P<token>[^\s,="]+)|(?P<bad>\S))'
)


def _lex(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    for match in _LEX.finditer(text):
        kind = match.lastgroup or "bad"
        value = match.group(kind)
        if kind == "quoted":
            value = unquote(value)
        tokens.append((kind, value))
        if kind == "bad":  # e.g. an unterminated quoted-string: the rest cannot be trusted
            break
    return tokens


def _split_challenges(text: str) -> list[tuple[str, dict[str, str] | None]]:
    """Split one header value into (scheme, params); params is None for a malformed challenge."""
    found: list[tuple[str, dict[str, str] | None]] = []
    tokens = _lex(text)
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "comma":
            i += 1
        elif kind == "token" and i + 1 < len(tokens) and tokens[i + 1][0] == "eq":
            name, i = value.lower(), i + 2
            param = ""
            if i < len(tokens) and tokens[i][0] in ("token", "quoted"):
                param, i = tokens[i][1], i + 1
            while i < len(tokens) and tokens[i][0] == "eq":  # token68 padding ("abc==")
                i += 1
            params = found[-1][1] if found else None
            if params is not None and name in params:  # ambiguous: reject the challenge
                found[-1] = (found[-1][0], None)
            elif params is not None:
                params[name] = param
        elif kind == "token":  # a bare token starts a new challenge
            found.append((value, {}))
            i += 1
        else:  # stray "=", quoted-string or garbage: drop this challenge, resume after a comma
            logger.debug("skipping malformed challenge in %r", text[:40])
            if found:
                found[-1] = (found[-1][0], None)
            while i < len(tokens) and tokens[i][0] != "comma":
                i += 1
    return found


def _to_challenge(params: Mapping[str, str]) -> Challenge | None:
    realm, nonce = params.get("realm"), params.get("nonce")
    if realm is None or nonce is None:
        logger.debug("skipping Digest challenge without realm or nonce")
        return None
    algorithm = params.get("algorithm", "MD5").strip().upper() or "MD5"
    qop = tuple(q for q in (p.strip().lower() for p in params.get("qop", "").split(",")) if q)
    return Challenge(
        scheme="Digest",
        realm=realm,
        nonce=nonce,
        algorithm=_CANONICAL.get(algorithm, algorithm),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").strip().lower() == "true",
        params=MappingProxyType(dict(params)),
    )


def parse_challenges(header_values: Sequence[str]) -> list[Challenge]:
    """Parse WWW-Authenticate / Proxy-Authenticate values; skip non-Digest and malformed ones."""
    challenges: list[Challenge] = []
    for value in header_values:
        for scheme, params in _split_challenges(value):
            if scheme.lower() != "digest" or params is None:
                continue
            challenge = _to_challenge(params)
            if challenge is not None:
                challenges.append(challenge)
    return challenges


def _pick_qop(challenge: Challenge) -> str | None:
    """Prefer "auth" over "auth-int"; None (RFC 2069 style) when no qop is offered."""
    if not challenge.qop:
        return None
    for qop in _QOPS:
        if qop in challenge.qop:
            return qop
    raise ValueError(f"no supported qop in {challenge.qop!r}")


def _answerable(challenge: Challenge) -> bool:
    return challenge.algorithm in SUPPORTED_ALGORITHMS and (
        not challenge.qop or any(q in challenge.qop for q in _QOPS)
    )


def choose_challenge(challenges: Sequence[Challenge]) -> Challenge | None:
    """The answerable challenge with the strongest algorithm (topmost on ties, RFC 8760 §2.4)."""
    usable = [c for c in challenges if _answerable(c)]
    if not usable:
        return None
    return min(usable, key=lambda c: SUPPORTED_ALGORITHMS.index(c.algorithm))


# --------------------------------------------------------------------------- computing


def digest_response(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
    qop: str | None,
    body: bytes = b"",
) -> str:
    """The hex ``response`` value (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1)."""
    if challenge.algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {challenge.algorithm!r}")
    if qop is not None and qop not in _QOPS:
        raise ValueError(f"unsupported qop {qop!r}")
    hash_name = _HASHES[challenge.algorithm.removesuffix("-sess")]

    def h(data: str | bytes) -> str:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return hashlib.new(hash_name, raw).hexdigest()

    ha1 = h(f"{username}:{challenge.realm}:{password}")
    if challenge.algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    a2 = f"{method}:{uri}" if qop != "auth-int" else f"{method}:{uri}:{h(body)}"
    if qop is None:
        return h(f"{ha1}:{challenge.nonce}:{h(a2)}")
    return h(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{h(a2)}")


def authorization_value(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
    body: bytes = b"",
) -> str:
    """The full Authorization / Proxy-Authorization value answering ``challenge``."""
    qop = _pick_qop(challenge)
    response = digest_response(
        challenge, method=method, uri=uri, username=username, password=password,
        cnonce=cnonce, nc=nc, qop=qop, body=body,
    )  # fmt: skip
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None or challenge.algorithm.endswith("-sess"):
        parts.append(f"cnonce={quote(cnonce)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc:08x}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


# --------------------------------------------------------------------------- UAC state

_HEADER_FOR_STATUS = {401: "Authorization", 407: "Proxy-Authorization"}
_MAX_NONCES = 32  # nonce counts remembered per account (least recently used dropped first)


class DigestClient:
    """Per-account digest state for a UAC (one per configured account)."""

    def __init__(
        self, username: str | None, password: str | None, *, cnonce_factory: Callable[[], str]
    ) -> None:
        self._username = username
        self._password = password
        self._cnonce_factory = cnonce_factory
        # (realm, nonce) -> (last cnonce, last nc used), in least recently used order.
        self._counters: dict[tuple[str, str], tuple[str, int]] = {}
        # (header name, realm) -> most recently answered challenge, for preemptive use.
        self._cached: dict[tuple[str, str], Challenge] = {}

    def __repr__(self) -> str:
        return f"DigestClient(username={self._username!r}, password=<redacted>)"

    def answer_challenge(
        self,
        status: int,
        header_values: Sequence[str],
        *,
        method: str,
        uri: str,
        body: bytes = b"",
        previous_attempt: bool,
    ) -> AuthHeader | AuthFailed:
        """Answer the challenges of a 401 or 407 response (RFC 3261 §22.2, §22.3)."""
        name = _HEADER_FOR_STATUS.get(status)
        if name is None:
            raise ValueError(f"status {status} is not a digest challenge (401 or 407)")
        challenges = parse_challenges(header_values)
        challenge = choose_challenge(challenges)
        realm = challenge.realm if challenge else (challenges[0].realm if challenges else "")
        if self._username is None or self._password is None:
            return self._fail(status, realm, "no credentials configured")
        if challenge is None:
            offered = ", ".join(sorted({c.algorithm for c in challenges})) or "no Digest challenge"
            return self._fail(status, realm, f"no supported algorithm (offered: {offered})")
        if previous_attempt and not challenge.stale:
            self._cached.pop((name, realm), None)
            return self._fail(status, realm, "wrong credentials")
        logger.debug(
            "answering %d for realm %r (algorithm %s, stale=%s)",
            status, realm, challenge.algorithm, challenge.stale,
        )  # fmt: skip
        self._cached[(name, realm)] = challenge
        return self._header(name, challenge, method=method, uri=uri, body=body)

    def preemptive(
        self, *, method: str, uri: str, body: bytes = b"", skip: Collection[str] = ()
    ) -> list[AuthHeader]:
        """Credentials for a new request, from the most recent challenge per realm and kind
        (header names in ``skip`` left out); each call counts the nonces on."""
        return [
            self._header(name, challenge, method=method, uri=uri, body=body)
            for (name, _realm), challenge in self._cached.items()
            if name not in skip
        ]

    def forget(self) -> None:
        """Drop cached challenges and nonce counts (e.g. after a registrar restart)."""
        self._cached.clear()
        self._counters.clear()

    def _header(
        self, name: str, challenge: Challenge, *, method: str, uri: str, body: bytes
    ) -> AuthHeader:
        assert self._username is not None and self._password is not None
        key = (challenge.realm, challenge.nonce)
        kept, nc = self._counters.pop(key, (None, 0))
        # Every request under a nonce counts on (nc, RFC 7616 §3.4) with a fresh cnonce, but a
        # -sess HA1 is bound to the first cnonce of its nonce (RFC 2617 §3.2.2.2): kept there.
        sess = challenge.algorithm.endswith("-sess")
        cnonce = kept if sess and kept is not None else self._cnonce_factory()
        self._counters[key] = (cnonce, nc + 1)  # re-inserted: the dict is kept in LRU order
        if len(self._counters) > _MAX_NONCES:
            del self._counters[next(iter(self._counters))]
        value = authorization_value(
            challenge, method=method, uri=uri, username=self._username,
            password=self._password, cnonce=cnonce, nc=nc + 1, body=body,
        )  # fmt: skip
        return AuthHeader(name, value)

    @staticmethod
    def _fail(status: int, realm: str, reason: str) -> AuthFailed:
        # DEBUG: the caller (registration, call) logs the failure once, with its context.
        logger.debug("digest authentication failed (%d, realm %r): %s", status, realm, reason)
        return AuthFailed(status=status, realm=realm, reason=reason)
