"""A hostile SSH server: it attacks before any host key is checked.

Both modes speak just enough of the protocol (RFC 4253: version exchange and
unencrypted binary packets) to reach the client's error path on every
connection attempt:

- "algs": a KEXINIT whose algorithm name-lists carry terminal escapes, so no
  algorithm matches and the client's "no matching algorithm" error quotes them;
- "disconnect": an SSH_MSG_DISCONNECT whose reason carries them.

The payload writes the clipboard (OSC 52), retitles the window (OSC 0/2) and
tries a CSI cursor move: none of it may reach the user's terminal.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys

from sparktui.core.aio import within

#: what the attacker wants the terminal to do
PAYLOAD = ("\x1b]52;c;cHduZWQ=\x07"  # clipboard := "pwned"
           "\x1b]2;PWNED-TITLE\x07"  # window title
           "\x1b]0;PWNED-ICON\x1b\\"
           "\x9b2J"  # C1 CSI: clear screen
           "[bold red]markup[/]")

MODES = ("algs", "disconnect")


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _packet(payload: bytes) -> bytes:
    padding = 8 - (len(payload) + 5) % 8
    if padding < 4:
        padding += 8
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + \
        os.urandom(padding)


def kexinit(name: bytes) -> bytes:
    lists = [name] * 10
    return _packet(bytes([20]) + os.urandom(16) + b"".join(_string(x) for x in lists)
                   + b"\x00" + b"\x00\x00\x00\x00")


def disconnect(reason: bytes) -> bytes:
    return _packet(bytes([1]) + struct.pack(">I", 2) + _string(reason) + _string(b""))


class HostileSSH:
    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> HostileSSH:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        payload = PAYLOAD.encode("utf-8")
        try:
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
            await reader.readline()  # the client's version
            if self.mode == "algs":
                # name-lists are ASCII: the 7-bit escapes only
                ascii_payload = PAYLOAD.replace("\x9b", "\x1b[").encode("ascii")
                writer.write(kexinit(b"evil-" + ascii_payload.replace(b",", b";")))
            else:
                writer.write(disconnect(b"go away " + payload))
            await writer.drain()
            await within(reader.read(65536), 5)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()


async def _main(mode: str, port: int) -> None:
    server = await HostileSSH(mode).start(port=port)
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
