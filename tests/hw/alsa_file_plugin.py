"""Headless ALSA for tests: PyAudio -> PortAudio -> ALSA -> raw files, with no sound card.

:func:`alsa_sandbox` writes an ALSA configuration of its own and returns the environment that
makes a child process use it *instead of* the system's (``ALSA_CONFIG_PATH`` names only our
file: no alsa.conf, /etc/asound.conf, ~/.asoundrc, PulseAudio or JACK definitions are read, so
the machine's setup cannot change the result). Only plugins built into libasound2 are used:
``asym``, ``plug``, ``file`` and ``null``. Two PCMs exist:

``default``
    playback: ``plug`` -> ``file`` writing raw S16_LE to ``playback`` -> ``null``;
    capture: ``plug`` -> ``file`` reading raw S16_LE from ``capture`` -> ``null``.
    The file plugin takes the format the application opened, so a 16 kHz mono stream
    writes (and reads) 16 kHz mono samples, bit for bit.
``intercom_stereo48k``
    the same with the ``plug`` slave fixed at 48000 Hz, 2 channels, S16_LE; files
    ``playback_48k`` / ``capture_48k``.

``null`` has no clock: streams run hundreds of times faster than real time. A playback file
therefore grows quickly while a stream is open (keep streams short), and capture past the end
of its input file repeats stale data (make input files longer than the test reads).

ALSA reads its configuration when PortAudio initialises, once per process, so the code under
test runs in a child process (:func:`run_python`) with the sandbox's environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STEREO_48K_DEVICE = "intercom_stereo48k"

_ASOUNDRC = """\
# Written by tests/hw/alsa_file_plugin.py: a sound card made of files.
pcm.!default {{
    type asym
    playback.pcm {{
        type plug
        slave.pcm {{
            type file
            slave.pcm {{ type null }}
            file "{playback}"
            format "raw"
            truncate true
        }}
    }}
    capture.pcm {{
        type plug
        slave.pcm {{
            type file
            slave.pcm {{ type null }}
            file "/dev/null"
            infile "{capture}"
            format "raw"
        }}
    }}
}}
pcm.{stereo48k} {{
    type asym
    playback.pcm {{
        type plug
        slave {{
            pcm {{
                type file
                slave.pcm {{ type null }}
                file "{playback_48k}"
                format "raw"
                truncate true
            }}
            rate 48000
            channels 2
            format S16_LE
        }}
    }}
    capture.pcm {{
        type plug
        slave {{
            pcm {{
                type file
                slave.pcm {{ type null }}
                file "/dev/null"
                infile "{capture_48k}"
                format "raw"
            }}
            rate 48000
            channels 2
            format S16_LE
        }}
    }}
}}
"""

_NOISE = ("ALSA lib ", "Cannot connect to server", "jack server", "JackShm", "Jack")


@dataclass(frozen=True)
class AlsaSandbox:
    """Paths of one sandbox and the environment a child process needs to use it."""

    directory: Path
    config: Path
    playback: Path
    capture: Path
    playback_48k: Path
    capture_48k: Path
    env: dict[str, str]


def alsa_sandbox(directory: Path) -> AlsaSandbox:
    """Write the configuration into ``directory``; input files start as 1 s of silence."""
    paths = {
        name: directory / f"{name}.raw"
        for name in ("playback", "capture", "playback_48k", "capture_48k")
    }
    config = directory / "asoundrc"
    config.write_text(
        _ASOUNDRC.format(stereo48k=STEREO_48K_DEVICE, **{k: str(v) for k, v in paths.items()})
    )
    # The file plugin refuses to open a missing input file, and PortAudio probes every PCM.
    paths["capture"].write_bytes(bytes(2 * 16000))
    paths["capture_48k"].write_bytes(bytes(2 * 2 * 48000))
    env = dict(os.environ)
    env.update(
        ALSA_CONFIG_PATH=str(config),
        HOME=str(directory),  # PortAudio's JACK and PulseAudio probes look here
        JACK_NO_START_SERVER="1",
    )
    return AlsaSandbox(directory=directory, config=config, env=env, **paths)


def run_python(
    sandbox: AlsaSandbox, code: str, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python with the sandbox's ALSA; fail with its stderr if it fails.

    ALSA/JACK start-up chatter is filtered out of the stderr shown on failure.
    """
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=sandbox.env,
        cwd=sandbox.directory,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        stderr = "\n".join(
            line for line in result.stderr.splitlines() if not line.startswith(_NOISE)
        )
        raise AssertionError(
            f"child exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{stderr}"
        )
    return result
