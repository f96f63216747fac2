"""Ports and waiting, shared by the Python test drivers and benches
(tests/gui/harness.py, tests/package/test_deb.py, scripts/bench_tray_memory.py).

Each of them puts this folder on sys.path itself, from its own location in
the repository, so it works from whatever directory it is started in.
"""

import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    """Something accepts TCP connections on host:port."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_for(what, cond, timeout=30.0, every=0.1):
    """Polls cond() until it returns something truthy, which it returns;
    fails (AssertionError) naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
