"""What the one-number tests share: the door registered at kamailio, and two phones on `family`.

:func:`door_at` is `intercom run` registered as ``door`` at a server and calling ``family``
(PCMU, a WAV microphone, DEBUG log); :func:`family_phones` starts a linphone and a baresip
phone (baresip answering by hand) and returns once both are registered as ``family``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .baresip_harness import BaresipPeer
from .daemon_process import DaemonProcess
from .linphone_harness import LinphonePeer

__all__ = ["door_at", "family_phones"]


def door_at(
    tmp_path: Path, server: str, password: str, microphone: Path, **settings: str
) -> DaemonProcess:
    """The door at ``server`` (``host:port``), with ``settings`` added or replacing these."""
    return DaemonProcess(tmp_path, {
        "INTERCOM_SIP_SERVER": server,
        "INTERCOM_SIP_USER": "door",
        "INTERCOM_SIP_PASSWORD": password,
        "INTERCOM_SIP_BIND": "127.0.0.1:0",
        "INTERCOM_CALL_TARGET": "family",
        "INTERCOM_CODECS": "PCMU",
        "INTERCOM_AUDIO_INPUT": f"wav:{microphone}",
        "INTERCOM_AUDIO_OUTPUT": "null",
        "INTERCOM_LOG_LEVEL": "DEBUG",
        **settings,
    })  # fmt: skip


@asynccontextmanager
async def family_phones(
    tmp_path: Path, server: str, password: str, linphone_wav: Path, baresip_wav: Path
) -> AsyncIterator[tuple[LinphonePeer, BaresipPeer]]:
    """A linphone and a baresip phone registered as ``family`` at ``server``, then stopped."""
    linphone = LinphonePeer(linphone_wav, tmp_path / "linphone")
    baresip = BaresipPeer(
        baresip_wav, user="family", answer_mode="manual", workdir=tmp_path / "baresip",
        registrar=server, password=password,
    )  # fmt: skip
    async with linphone, baresip:
        await linphone.register("family", server, password)
        await baresip.wait_registered()
        yield linphone, baresip
