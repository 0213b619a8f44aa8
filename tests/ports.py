"""Local TCP ports for servers the tests start."""

import socket


def free_port() -> int:
    """A local TCP port nothing listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
