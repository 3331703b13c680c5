"""The article's "choosing the right tool" table, measured on this machine.

Three kinds of work, each under every backend (``backend="all"``):

- CPU-bound pure Python: holds the GIL, so threads cannot overlap and processes can;
- I/O-bound: requests to a slow local HTTP server on 127.0.0.1: mostly waiting, so
  threads and asyncio overlap and processes only add their cost;
- GIL-releasing: ``hashlib.sha256`` over large buffers releases the GIL, so threads
  scale like processes without pickling anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

#: How long the local server takes to answer (a slow remote API).
SERVER_DELAY_S = 0.05
#: 8 MiB: hashlib releases the GIL for inputs over 2 KiB.
BUFFER = bytes(range(256)) * (8 * 1024 * 1024 // 256)


def count_primes(limit: int) -> int:
    """Deliberately naive pure-Python work."""
    found = 0
    for n in range(2, limit):
        for d in range(2, int(n**0.5) + 1):
            if n % d == 0:
                break
        else:
            found += 1
    return found


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(SERVER_DELAY_S)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class SlowServer(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: with 8 requests at once the kernel
    # may drop a SYN, and its 1 s retransmit shows up as a false 0.4x round.
    request_queue_size = 64
    daemon_threads = True


@pytest.fixture(scope="module")
def slow_server_url() -> Iterator[str]:
    server = SlowServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parallel(backend="all")
def test_cpu_bound_pure_python():
    assert count_primes(12_000) == 1438


@pytest.mark.parallel(backend="all", workers=8, tasks=8)
def test_io_bound_http_requests(slow_server_url):
    with urllib.request.urlopen(slow_server_url, timeout=10) as response:
        assert response.read() == b"ok"


@pytest.mark.parallel(backend="all", workers=8, tasks=8)
async def test_io_bound_async_waiting():
    await asyncio.sleep(SERVER_DELAY_S)


@pytest.mark.parallel(backend="all")
def test_gil_releasing_hashing():
    assert len(hashlib.sha256(BUFFER).hexdigest()) == 64
