"""A tool on the simulated Spark's PATH that asks the device model (sim.ssh.relay).

`nvidia-smi`, `docker` and `kill` in the device root's bin/ are copies of this file:
the model of the GPU, the processes and the Docker engine lives in the simulator's
process, so the stand-in relays its name, arguments and stdin there over a UNIX
socket and writes back what comes: frames of one kind byte (o: stdout, e: stderr,
x: exit status), a 4-byte length, the bytes. Standard library only and no package
imports: it starts per call (python -S).
"""

import contextlib
import json
import os
import socket
import struct
import sys
import threading

SOCKET_ENV = "SPARKTUI_SIM_SOCKET"


def relay_stdin(sock: socket.socket) -> None:
    """Send stdin on as it comes (a `docker exec -it` shell reads it); then end our half."""
    try:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # no stdin (fd 0 closed), or the answer is complete and the socket gone
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)


def main() -> int:
    name = os.path.basename(sys.argv[0])
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(os.environ[SOCKET_ENV])
    except (KeyError, OSError) as exc:
        sys.stderr.write(f"{name}: the simulated device does not answer: {exc}\n")
        return 127
    sock.sendall(json.dumps([name, *sys.argv[1:]]).encode() + b"\n")
    threading.Thread(target=relay_stdin, args=(sock,), daemon=True).start()
    answer = sock.makefile("rb")
    while len(head := answer.read(5)) == 5:
        payload = answer.read(struct.unpack(">I", head[1:])[0])
        if head[:1] == b"x":
            return int(payload)
        out = sys.stdout if head[:1] == b"o" else sys.stderr
        out.buffer.write(payload)
        out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
