"""kamailio 5.6 (Debian package) as the one-number service: digest registrar and forking proxy.

One :class:`Kamailio` is one kamailio process on 127.0.0.1 (UDP and TCP on one port) with a
configuration written by the test: no database, one password for every account.

* REGISTER is challenged (``www_authenticate``, realm = the To domain) and saved in an
  in-memory location table (``usrloc`` with ``db_mode 0``): every phone that registers the same
  user is one more contact of that address of record.
* An INVITE from outside a dialog is challenged too (``proxy_authenticate``, 407), record-routed,
  looked up in the location table and relayed to every contact at once (``t_relay``): a
  parallel fork. When one branch answers, tm CANCELs the others with ``Reason: SIP;cause=200``.
* Requests inside a dialog follow their Route (``loose_route``); one whose Request-URI is a
  GRUU (RFC 5627: linphone registers with ``+sip.instance`` and answers with the public GRUU
  the registrar gave it as Contact) is looked up in the location table first. A CANCEL goes
  where its INVITE went.

With ``tls=ServerCert(...)`` it also listens for SIP over TLS on ``tls_port`` (the next port;
``kamailio-tls-modules``' tls.so, its ``tls.cfg`` written to the work directory: TLS 1.2 or
newer, that certificate, no client certificate asked for) and honours RFC 5923's Via ``alias``
(``tcp_accept_aliases``): a door registered over TLS with no listener of its own is reached
over its own connection, for the INVITE's in-dialog requests as for anything else.

Facts about kamailio 5.6.3 this relies on (tried on loopback): with every peer on 127.0.0.1 a
port-less ``alias`` would make every port "myself", so the configuration only listens on
``udp:`` and ``tcp:127.0.0.1:PORT``; a wrong password gets a fresh 401, never a 403;
``-DD -E`` keeps it in the foreground with its log on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from ..tls_certs import ServerCert
from .peer_support import BOTH, TCP, bindable, claim_ports, require_program

__all__ = ["Kamailio", "require_kamailio"]

MODULE_PATH = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
{tls_core}
mpath="{modules}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)
{nat_modules}
{tls_modules}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{
            # A GRUU (RFC 5627: linphone's Contact) is ours to resolve to the phone.
            if ($(ru{{uri.param,gr}}) != "") {{ lookup("location"); }}
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{password}", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        {nat_register}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("OPTIONS") && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("INVITE")) {{
        if (!pv_proxy_authenticate("$fd", "{password}", "0")) {{
            proxy_challenge("$fd", "0");
            exit;
        }}
        consume_credentials();
        record_route();
    }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    xlog("L_INFO", "forking $rm for $tU to $rd:$rp\\n");
    t_relay();
}}
"""


# ``nat=True``: the registrar rewrites every REGISTER's Contact to the packet's source
# (nathelper's ``fix_nated_contact``, as NAT setups do) and grants at most 10 s; its 200 has no
# Expires header, so only the rewritten Contact's expires param tells the lifetime.
NAT_MODULES = """loadmodule "nathelper.so"
modparam("registrar", "min_expires", 1)
modparam("registrar", "max_expires", 10)"""
NAT_REGISTER = "fix_nated_contact();"


# The TLS listener: tcp_accept_aliases makes the Via's ;alias (RFC 5923) an alias of the
# connection the request came on, so the door's Contact port reaches it over that connection.
TLS_CORE = """enable_tls=yes
tcp_accept_aliases=yes
listen=tls:127.0.0.1:{tls_port}"""
TLS_MODULES = """loadmodule "tls.so"
modparam("tls", "config", "{tls_cfg}")"""
TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


def require_kamailio() -> str:
    return require_program("kamailio")


class Kamailio:
    """A kamailio registrar and forking proxy on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        password: str = "secret",
        port: int = 0,
        nat: bool = False,
        tls: ServerCert | None = None,
    ) -> None:
        self.workdir = workdir
        self.password = password
        self.nat = nat
        self.tls = tls
        self.port = port or claim_ports([BOTH, TCP] if tls else [BOTH])
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def tls_port(self) -> int:
        """The TLS listener's port (the one after :attr:`port`), with ``tls`` given."""
        assert self.tls is not None
        return self.port + 1

    @property
    def address(self) -> str:
        """``host:port`` as INTERCOM_SIP_SERVER or a phone's registrar."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "kamailio.log"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def start(self, timeout: float = 10.0) -> None:
        """Start kamailio; return once it has bound its port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "kamailio.cfg"
        modules, register = (NAT_MODULES, NAT_REGISTER) if self.nat else ("", "")
        tls_core = tls_modules = ""
        if self.tls is not None:
            tls_cfg = self.workdir / "tls.cfg"
            tls_cfg.write_text(TLS_CFG.format(key=self.tls.key, cert=self.tls.cert))
            tls_core = TLS_CORE.format(tls_port=self.tls_port)
            tls_modules = TLS_MODULES.format(tls_cfg=tls_cfg)
        config.write_text(
            CONFIG.format(
                port=self.port,
                modules=MODULE_PATH,
                password=self.password,
                nat_modules=modules,
                nat_register=register,
                tls_core=tls_core,
                tls_modules=tls_modules,
            )
        )
        with open(self.log_file, "ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                require_kamailio(), "-f", str(config), "-DD", "-E", "-w", str(self.workdir),
                "-P", str(self.workdir / "kamailio.pid"),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while bindable(self.port, BOTH) or (self.tls and bindable(self.tls_port, TCP)):
            if self._proc.returncode is not None:
                raise AssertionError(f"kamailio exited at start:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"kamailio did not bind in {timeout} s:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM to the whole process group (kamailio forks its workers), then SIGKILL."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), 5)
                return
            except TimeoutError:
                continue

    async def __aenter__(self) -> Kamailio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
