"""A test CA and server certificates, made by the test with the ``openssl`` command (Debian's
``openssl`` package, in dev.sh's APT_PACKAGES): no key or certificate is kept in the tree.

:func:`make_ca` writes a CA (EC P-256, valid two days); :meth:`TestCa.server` a server key and
certificate it signed, with the subjectAltName entries asked for (or none), a subject CN, and
``days=-1`` for one that expired yesterday.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["ServerCert", "TestCa", "make_ca"]

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    program = shutil.which("openssl")
    if program is None:
        pytest.fail("the openssl command is missing: run ./dev.sh (it installs openssl)")
    done = subprocess.run([program, *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


@dataclass(frozen=True)
class ServerCert:
    cert: Path  # PEM certificate
    key: Path  # PEM private key


@dataclass(frozen=True)
class TestCa:
    __test__ = False  # not a test class, whatever its name

    directory: Path
    cert: Path
    key: Path

    def server(
        self, name: str, *, san: tuple[str, ...] | None = None, cn: str | None = None, days: int = 2
    ) -> ServerCert:
        """A server certificate: subjectAltName ``san`` (default ``DNS:<name>``; ``()`` for
        none), subject CN ``cn`` (default ``name``), valid ``days`` (negative: expired)."""
        stem = f"{name}-{abs(hash((san, cn, days)))}"
        key, csr, cert = (self.directory / f"{stem}.{ext}" for ext in ("key", "csr", "pem"))
        _openssl("req", "-new", *_EC, "-keyout", key.name, "-out", csr.name,
                 "-subj", f"/CN={cn or name}", cwd=self.directory)  # fmt: skip
        entries = (f"DNS:{name}",) if san is None else san
        ext = self.directory / f"{stem}.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            + (f"subjectAltName={','.join(entries)}\n" if entries else "")
        )
        _openssl("x509", "-req", "-in", csr.name, "-CA", self.cert.name, "-CAkey", self.key.name,
                 "-CAcreateserial", "-out", cert.name, "-days", str(days), "-extfile", ext.name,
                 cwd=self.directory)  # fmt: skip
        return ServerCert(cert, key)


def make_ca(directory: Path, name: str = "Test CA") -> TestCa:
    """A fresh CA in ``directory`` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    return TestCa(directory, directory / "ca.pem", directory / "ca.key")
