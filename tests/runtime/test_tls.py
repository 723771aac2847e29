"""SIP over TLS against a Python TLS registrar made by the test, with a test CA made by the test.

A good certificate registers, keeps its flow with keepalives and carries a request back to the
door (RFC 5923: no listener of ours); every refused server (unknown CA, name mismatch, a CN that
is not looked at when SANs exist, a wildcard, expired, TLS 1.1) is one WARNING line naming the
server's name and the check, the same reason in the registration's failure, never a traceback
and never a byte of SIP sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import warnings
from pathlib import Path

import pytest

from intercom.runtime.tls import TlsSetupError, client_context, identity_problem, setup_problem
from intercom.runtime.ua import UaConfig, UserAgent
from intercom.sip.events import RegistrationFailed, RegistrationSucceeded
from intercom.sip.framing import PING, PONG, StreamFramer
from intercom.sip.locate import HostPort, SrvRecord
from intercom.sip.message import Request, Response, parse_message

from ..tls_certs import ServerCert, TestCa, make_ca

TIMEOUT = 5.0
NAME = "sip.door.test"


class LoopbackDns:
    """Every name is 127.0.0.1; no SRV."""

    async def srv(self, name: str) -> list[SrvRecord]:
        return []

    async def addresses(self, host: str) -> list[str]:
        return ["127.0.0.1"]


class TlsRegistrar:
    """A TLS registrar on loopback: 200 to every REGISTER, pong to every ping; ``requests`` and
    ``responses`` hold what it read, and ``send`` writes on the newest connection."""

    def __init__(self, cert: ServerCert) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert.cert, cert.key)
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.pings = 0
        self.handshakes = 0
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.writer is not None:
            self.writer.close()

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        self.writer = writer
        framer = StreamFramer()
        try:
            while data := await reader.read(4096):
                for frame in framer.feed(data):
                    if frame == PING:
                        self.pings += 1
                        writer.write(PONG)
                        continue
                    message = parse_message(frame, stream=True)
                    if isinstance(message, Response):
                        self.responses.put_nowait(message)
                        continue
                    assert isinstance(message, Request)
                    self.requests.put_nowait(message)
                    names = ("Via", "From", "To", "Call-ID", "CSeq", "Contact")
                    copied = [f"{n}: {v}" for n, v in message.headers if n in names]
                    ok = ["SIP/2.0 200 OK", *copied, "Expires: 600", "Content-Length: 0", "", ""]
                    writer.write("\r\n".join(ok).encode())
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


class OldTlsServer:
    """A server that speaks TLS 1.1 at most: one blocking handshake in a thread (asyncio's
    server would drop the connection without the protocol_version alert a real one sends)."""

    def __init__(self, cert: ServerCert) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert.cert, cert.key)
        self.context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # exactly what is tested
            self.context.maximum_version = ssl.TLSVersion.TLSv1_1
        self.context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 forbids 1.1 otherwise
        self.requests: asyncio.Queue[Request] = asyncio.Queue()  # stays empty
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def start(self) -> int:
        self._thread.start()
        return int(self._listener.getsockname()[1])

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection, contextlib.suppress(OSError):
            self.context.wrap_socket(connection, server_side=True)  # fails: the client says 1.2

    async def stop(self) -> None:
        self._listener.close()
        await asyncio.to_thread(self._thread.join, TIMEOUT)


def door(port: int, ca: Path, **extra: object) -> UserAgent:
    config = UaConfig(
        bind=HostPort("127.0.0.1", 0), server=HostPort(NAME, port), transport="tls",
        user="door", password="secret", tls_ca_file=str(ca), keepalive_interval=0.2,
    )  # fmt: skip
    for key, value in extra.items():
        setattr(config, key, value)
    return UserAgent(config, dns=LoopbackDns())


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return make_ca(tmp_path_factory.mktemp("ca"))


def test_a_good_certificate_registers_keeps_its_flow_and_carries_requests_back(
    ca: TestCa,
) -> None:
    async def main() -> None:
        registrar = TlsRegistrar(ca.server(NAME))
        port = await registrar.start()
        ua = door(port, ca.cert)
        await ua.start()
        try:
            await ua.wait_for(RegistrationSucceeded, TIMEOUT)
            register = await asyncio.wait_for(registrar.requests.get(), TIMEOUT)
            assert register.start_line() == f"REGISTER sip:{NAME}:{port};transport=tls SIP/2.0"
            assert register.top_via.transport == "TLS" and "alias" in register.top_via.params
            assert ";transport=tls>" in (register.headers.get("Contact") or "")
            # The registrar's OPTIONS comes back over the door's own connection (RFC 5923).
            registrar.send(
                b"OPTIONS sip:door@127.0.0.1 SIP/2.0\r\n"
                b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKtls1\r\n"
                b"From: <sip:sip.door.test>;tag=r1\r\nTo: <sip:door@sip.door.test>\r\n"
                b"Call-ID: tls-options\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
            answer = await asyncio.wait_for(registrar.responses.get(), TIMEOUT)
            assert answer.status == 200 and answer.call_id == "tls-options"
            await asyncio.sleep(0.6)
            assert registrar.pings >= 2 and registrar.handshakes == 1  # one flow, kept alive
        finally:
            await ua.stop()
            await registrar.stop()

    asyncio.run(main())


REFUSALS = {
    "unknown CA": (
        lambda ca, other: other.server(NAME),
        f"certificate of {NAME} refused: unknown CA (unable to get local issuer certificate)",
    ),
    "name mismatch": (
        lambda ca, other: ca.server("other.test"),
        f"certificate of {NAME} refused: name mismatch (Hostname mismatch, certificate is not "
        f"valid for '{NAME}'.)",
    ),
    "CN ignored when SANs exist": (
        lambda ca, other: ca.server(NAME, san=("DNS:other.test",), cn=NAME),
        f"certificate of {NAME} refused: name mismatch (Hostname mismatch, certificate is not "
        f"valid for '{NAME}'.)",
    ),
    "wildcard": (
        lambda ca, other: ca.server(NAME, san=("DNS:*.door.test",), cn="*.door.test"),
        f"certificate of {NAME} refused: name mismatch (it names *.door.test; RFC 5922 accepts no "
        "wildcard for a SIP domain)",
    ),
    "expired": (
        lambda ca, other: ca.server(NAME, days=-1),
        f"certificate of {NAME} refused: certificate expired (certificate has expired)",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_certificate_is_one_line_and_the_registrations_reason(
    case: str, ca: TestCa, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_cert, expected = REFUSALS[case]
    cert = make_cert(ca, make_ca(tmp_path / "other", "Other CA") if case == "unknown CA" else ca)
    failure = asyncio.run(refused(TlsRegistrar(cert), ca.cert, caplog))
    assert failure.reason == f"tls:127.0.0.1:{failure.registrar_port}: {expected}"


def test_a_server_offering_only_tls_1_1_is_refused(
    ca: TestCa, caplog: pytest.LogCaptureFixture
) -> None:
    failure = asyncio.run(refused(OldTlsServer(ca.server(NAME)), ca.cert, caplog))
    assert f"TLS with {NAME} refused: protocol version (" in failure.reason
    assert failure.reason.endswith("; TLS 1.2 or newer needed)")


class Refused:
    def __init__(self, reason: str, registrar_port: int) -> None:
        self.reason = reason
        self.registrar_port = registrar_port


async def refused(
    registrar: TlsRegistrar | OldTlsServer, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> Refused:
    port = await registrar.start()
    ua = door(port, ca_file)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await ua.start()
        try:
            failed = await ua.wait_for((RegistrationFailed, RegistrationSucceeded), TIMEOUT)
        finally:
            await ua.stop(timeout=0.5)
            await registrar.stop()
    assert isinstance(failed, RegistrationFailed)
    assert registrar.requests.empty()  # not a byte of SIP reached it
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert (
        lines[0]
        .getMessage()
        .startswith(  # the status reason, in the log's one line
            f"registration at {NAME}:{port} failed: {failed.reason}; retrying in "
        )
    )
    return Refused(failed.reason, port)


def test_the_ca_file_must_load_and_unverified_contexts_check_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(TlsSetupError, match=f"INTERCOM_TLS_CA_FILE {bad}: cannot load: "):
        client_context(str(bad))
    with pytest.raises(TlsSetupError, match="No such file or directory"):
        client_context(str(tmp_path / "missing.pem"))
    strict = client_context(None)
    assert strict.minimum_version == ssl.TLSVersion.TLSv1_2
    assert strict.check_hostname and strict.verify_mode == ssl.CERT_REQUIRED
    off = client_context(str(bad), verify=False)  # the file is not even read
    assert not off.check_hostname and off.verify_mode == ssl.CERT_NONE


def test_identity_problem_takes_exact_names_sip_uris_and_a_lone_cn() -> None:
    san = {"subjectAltName": (("DNS", "SIP.door.test"),), "subject": ((("commonName", "x"),),)}
    assert identity_problem(san, "sip.door.test.") is None
    assert identity_problem({"subjectAltName": (("URI", f"sip:{NAME}"),)}, NAME) is None
    assert identity_problem({"subject": ((("commonName", NAME),),)}, NAME) is None
    assert identity_problem({"subjectAltName": (("IP Address", "127.0.0.1"),)}, "127.0.0.1") is None
    assert identity_problem({}, NAME) is None  # nothing verified (INTERCOM_TLS_VERIFY=off)
    wildcard = {"subjectAltName": (("DNS", "*.door.test"),)}
    assert identity_problem(wildcard, NAME) is not None


def test_intercom_check_names_a_ca_file_that_does_not_load(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    assert setup_problem("tls", missing, True) == (
        f"INTERCOM_TLS_CA_FILE {missing}: cannot load: No such file or directory"
    )
    assert setup_problem("udp", missing, True) is None  # not used: not checked
    assert setup_problem("tls", missing, False) is None  # verify off: the file is not read
    assert setup_problem("tls", "", True) is None  # the system store
