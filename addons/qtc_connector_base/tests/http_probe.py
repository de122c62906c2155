"""A raw HTTP client for oversized-body tests (plain Python, no Odoo).

``requests`` sends a whole body before it reads the answer, so it cannot tell
whether a server answered early. ``send_body`` writes the body piece by piece
while watching for the answer, and stops sending as soon as the status line
arrives: the bytes it managed to send bound what the server read (plus what
the two kernels buffer on the way). Used by the Odoo tests of the webhook
routes and by the fault suite.
"""

import select
import socket
import time
from dataclasses import dataclass

PIECE = 64 * 1024
SEND_BUFFER = 64 * 1024


@dataclass
class Probe:
    """What the server answered, and how much of the body went out first."""

    status: int | None
    head: bytes
    body: bytes
    sent: int
    finished_sending: bool
    error: str = ""


def send_body(
    host,
    port,
    path,
    total,
    *,
    chunked=False,
    declare=None,
    headers=None,
    method="POST",
    timeout=60.0,
):
    """POST ``total`` bytes of ``a`` to ``path`` and read the answer.

    :param chunked: ``Transfer-Encoding: chunked`` instead of a length
    :param declare: the ``Content-Length`` to declare (default ``total``)
    :param headers: more request headers (``Content-Type``...)
    :returns: a ``Probe``
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {total if declare is None else declare}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.sendall(head)
    sock.setblocking(False)
    sent, pending, pending_size = 0, b"", 0
    answer, error = b"", ""
    deadline = time.monotonic() + timeout
    piece = b"a" * PIECE
    ended = not chunked and total == 0
    try:
        while time.monotonic() < deadline:
            want_write = sent < total or pending or (chunked and not ended)
            readable, writable, _ = select.select(
                [sock], [sock] if want_write else [], [], 1.0
            )
            if readable:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError) as exc:
                    error = type(exc).__name__
                    data = b""
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
                continue
            if writable:
                if not pending:
                    if sent < total:
                        size = min(PIECE, total - sent)
                        pending = piece[:size]
                        if chunked:
                            pending = f"{size:x}\r\n".encode() + pending + b"\r\n"
                        pending_size = size
                    elif chunked and not ended:
                        pending, pending_size, ended = b"0\r\n\r\n", 0, True
                try:
                    written = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError) as exc:
                    error = type(exc).__name__
                    # The answer may already wait in the receive buffer.
                    sock.setblocking(True)
                    sock.settimeout(5)
                    try:
                        while not _complete(answer):
                            data = sock.recv(65536)
                            if not data:
                                break
                            answer += data
                    except OSError:
                        pass
                    break
                pending = pending[written:]
                if not pending:
                    sent += pending_size
                    pending_size = 0
    finally:
        sock.close()
    head_part, _sep, body = answer.partition(b"\r\n\r\n")
    status = None
    if head_part.startswith(b"HTTP/"):
        try:
            status = int(head_part.split(b" ", 2)[1])
        except (IndexError, ValueError):
            status = None
    return Probe(status, head_part, body, sent, sent >= total, error)


def _complete(answer):
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _colon, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip() or 0)
    return False  # read until the server closes
