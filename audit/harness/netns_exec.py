"""Bring the loopback interface up inside a fresh network namespace, then exec the command.

Run by path (`python netns_exec.py CMD ARGS...`) as the first process in the namespace, so it must
not import anything from the project. A new network namespace has only `lo`, and it starts down;
torchrun's `--standalone` rendezvous listens on 127.0.0.1, so without this every run would fail.
"""

import fcntl
import os
import socket
import struct
import sys

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: netns_exec.py CMD [ARGS...]")
    loopback_up()
    os.execvp(sys.argv[1], sys.argv[1:])
