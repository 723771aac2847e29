"""The TLS client side of SIP over TLS: the context, the server's identity, one-line failures.

* :func:`client_context` makes the one ``ssl`` context the transport connects with: TLS 1.2 or
  newer, the server's certificate verified against ``INTERCOM_TLS_CA_FILE`` or else the system
  store, and its name checked (``check_hostname``: OpenSSL matches the subjectAltName dNSName
  entries, or an iPAddress entry for an IP literal, and looks at the subject's CN only when the
  certificate has no subjectAltName at all, as RFC 5922 §7.1 allows). With ``verify=False``
  (``INTERCOM_TLS_VERIFY=off``, for tests only) nothing is checked: the daemon warns at every
  start.
* :func:`identity_problem` adds what OpenSSL lets through but RFC 5922 §7.2 forbids for SIP: a
  wildcard. Run on the peer's certificate once the handshake is done, before any SIP crosses.
* :func:`describe_failure` turns a failed handshake into one line naming the server's name and
  the check that failed (expired, unknown CA, name mismatch, protocol version), never a
  traceback.

The name checked is the one the user configured (``INTERCOM_SIP_OUTBOUND_PROXY``'s host, else
``INTERCOM_SIP_SERVER``'s), never an SRV target or an address it resolved to (RFC 5922 §4.1);
the user agent hands it over, the transport sends it as SNI too.

``ssl`` costs nothing to import here: asyncio imports it already.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from typing import Any

from intercom.errors import IntercomError

__all__ = [
    "TlsSetupError",
    "client_context",
    "describe_failure",
    "identity_problem",
    "setup_problem",
]

# OpenSSL X509_V_ERR_* codes, by the check they stand for.
_EXPIRED = {10: "expired", 9: "not yet valid"}
_UNKNOWN_CA = {2, 18, 19, 20, 21, 27, 28}
_NAME_MISMATCH = {62, 64}


class TlsSetupError(IntercomError, OSError):
    """The TLS context cannot be made (an unreadable or invalid ``INTERCOM_TLS_CA_FILE``)."""


def client_context(ca_file: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """The context for every TLS connection towards SIP servers (module docstring).

    Raises :class:`TlsSetupError` naming the CA file when it cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise TlsSetupError(f"INTERCOM_TLS_CA_FILE {ca_file}: cannot load: {reason}") from None
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context


def setup_problem(transport: str, ca_file: str, verify: bool) -> str | None:
    """For ``intercom check``: why the TLS context of these settings cannot be made, or None."""
    if transport != "tls":
        return None
    try:
        client_context(ca_file or None, verify=verify)
    except TlsSetupError as exc:
        return str(exc)
    return None


def identity_problem(cert: Mapping[str, Any] | None, name: str) -> str | None:
    """Why the verified certificate ``cert`` (``getpeercert()``) does not name ``name`` as
    RFC 5922 §7.1-7.2 wants, or None. OpenSSL matched the name already; this refuses the
    match it made through a wildcard, which SIP does not allow."""
    if not cert or _is_ip(name):
        return None  # not verified (verify off), or an address matched by iPAddress
    wanted = name.lower().rstrip(".")
    names = [
        value
        for kind, value in cert.get("subjectAltName", ())
        if kind == "DNS" or (kind == "URI" and value.lower().startswith("sip:"))
    ]
    if not cert.get("subjectAltName"):  # RFC 5922 §7.1: the CN only without any SAN
        names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    exact = {value.lower().removeprefix("sip:").rstrip(".") for value in names}
    if wanted in exact:
        return None
    shown = ", ".join(names) or "none"
    return (
        f"certificate of {name} refused: name mismatch (it names {shown}; "
        "RFC 5922 accepts no wildcard for a SIP domain)"
    )


def describe_failure(exc: BaseException, name: str) -> str:
    """One line for a TLS connection to ``name`` that failed: which check, in plain words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        message = exc.verify_message or str(exc)
        if code in _EXPIRED:
            check = f"certificate {_EXPIRED[code]}"
        elif code in _UNKNOWN_CA:
            check = "unknown CA"
        elif code in _NAME_MISMATCH:
            check = "name mismatch"
        else:
            check = "verification failed"
        return f"certificate of {name} refused: {check} ({message})"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if "VERSION" in reason or "PROTOCOL" in reason:
            return f"TLS with {name} refused: protocol version ({reason}; TLS 1.2 or newer needed)"
        return f"TLS with {name} failed: {reason}"
    if isinstance(exc, TimeoutError):
        return f"TLS with {name} failed: no connection or handshake within the time allowed"
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"TLS with {name} failed: {detail}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
