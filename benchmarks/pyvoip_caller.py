"""pyVoIP 1.6.8 as a caller of the side-by-side benchmark, driven by lines on stdin.

Runs in the throwaway bench venv (``.bench/venv``, where pyVoIP lives), never in the product's
venv, and imports nothing of ``intercom``. It registers at ``--server`` as ``--user`` on
start, then obeys one command per stdin line and reports one word per stdout line:

    dial     -> calls ``--target`` at the server; "answered" once the 200 came
    hangup   -> BYE; "ended"
    quit     -> un-REGISTER and exit

While a call is up a thread plays ``--wav`` (8 kHz mono 16-bit, in a loop) into the call a
second ahead, converted to the 8-bit unsigned audio pyVoIP takes, and reads the received
audio and drops it (pyVoIP keeps unread audio in memory): the same work as the intercom's
``wav:`` input and ``null`` output.
"""

from __future__ import annotations

import argparse
import audioop  # pyVoIP itself depends on it (Python < 3.13)
import sys
import threading
import time
import wave

from pyVoIP.VoIP import CallState, VoIPCall, VoIPPhone


def _audio(path: str) -> bytes:
    with wave.open(path, "rb") as source:
        if (source.getframerate(), source.getnchannels(), source.getsampwidth()) != (8000, 1, 2):
            raise SystemExit(f"{path}: want 8 kHz mono 16-bit")
        data = source.readframes(source.getnframes())
    return audioop.bias(audioop.lin2lin(data, 2, 1), 1, 128)


def _play(call: VoIPCall, audio: bytes, stop: threading.Event) -> None:
    position = 0
    ahead = 8000  # one second
    started = time.monotonic()
    written = 0
    while not stop.is_set() and call.state == CallState.ANSWERED:
        due = int((time.monotonic() - started) * 8000) + ahead
        while written < due:
            chunk = audio[position : position + 1600]
            position = (position + 1600) % len(audio)
            call.write_audio(chunk)
            written += len(chunk)
        call.read_audio(160, blocking=False)  # drain what came in, as a null output
        stop.wait(0.1)
        for _ in range(4):
            call.read_audio(160, blocking=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp-low", type=int, required=True)
    parser.add_argument("--rtp-high", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--wav", required=True)
    args = parser.parse_args()
    audio = _audio(args.wav)
    phone = VoIPPhone(
        args.server, args.port, args.user, "bench", myIP="127.0.0.1",
        sipPort=args.sip_port, rtpPortLow=args.rtp_low, rtpPortHigh=args.rtp_high,
    )  # fmt: skip
    phone.start()
    print("registered", flush=True)
    call: VoIPCall | None = None
    stop = threading.Event()
    for line in sys.stdin:
        command = line.strip()
        if command == "dial":
            call = phone.call(args.target)
            while call.state == CallState.DIALING:
                time.sleep(0.005)
            print("answered" if call.state == CallState.ANSWERED else "failed", flush=True)
            stop.clear()
            threading.Thread(target=_play, args=(call, audio, stop), daemon=True).start()
        elif command == "hangup" and call is not None:
            stop.set()
            call.hangup()
            print("ended", flush=True)
        elif command == "quit":
            break
    phone.stop()


if __name__ == "__main__":
    main()
