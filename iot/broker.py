"""Start and stop a private Mosquitto for tests, benchmarks and demos.

The configuration is the one FireGrid recommends for production as well:
persistence so that sessions and queued messages survive a broker restart,
and no limit on queued messages (Mosquitto's default of 1000 would silently
drop QoS 1 readings while the listener is away). Mosquitto writes its
persistence file on a clean shutdown and every ``autosave_interval``
seconds. Each save rewrites the whole file: with a save after every
change, one benchmark run on a loaded 2-core machine got only about 140
messages/s through the broker.

NOTE: a broker killed with SIGKILL or a power cut loses what arrived since
its last save (at most 10 s); the restart test stops it with SIGTERM.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {folder}/
autosave_interval 10
max_queued_messages 0
max_inflight_messages 0
log_dest file {folder}/mosquitto.log
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder, port):
    """Write mosquitto.conf for a broker on 127.0.0.1:``port`` that keeps its data in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mosquitto.conf"
    text = CONFIG.format(port=port, folder=folder)
    if os.geteuid() == 0:
        # Started as root, Mosquitto switches to the mosquitto user, which
        # cannot enter a root-only temporary folder to write its persistence
        # file; this private broker listens on loopback only, so it stays root.
        text += "user root\n"
    path.write_text(text)
    return path


def wait_for_port(port, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"no broker answered on 127.0.0.1:{port} within {timeout_s} s")


class PrivateBroker:
    """A Mosquitto process of its own on a free loopback port; stop() ends only that process."""

    def __init__(self, folder, port=None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.config = write_config(self.folder, self.port)
        self.process = None

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self, timeout_s=10.0):
        """Stop the broker with SIGTERM, which makes Mosquitto save its persistence file."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self):
        self.stop()
        return self.start()
