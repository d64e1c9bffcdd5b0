"""What the test-server wrappers (s3_test_server.py, pg_test_server.py) share: the command they run
and a free loopback port for the server."""

from __future__ import annotations

import socket
import sys


def wrapped_command(usage: str | None) -> list[str]:
    """The command after the optional ``--`` of ``argv``; exits with ``usage`` when there is none."""
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(usage)
    return args


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
