"""A loopback TCP balancer for scale-out tests: each connection goes to a random host, event streams to their own.

It stands for the load balancer in front of several hosts: `requests` opens one connection
per call, so every chunk, control and state request lands on a host picked at random, while
`GET …/events` goes to the events host (a third port). Bytes pass through unchanged and a
half-close is passed on, so a client's hang-up reaches the server as it would directly.
"""
import random
import socket
import threading


class SpreadingProxy:
    """Listens on a free loopback port (`url`, `port`); forwards each connection as described above.

    With `events_port` None, event streams go to a random host too.
    """

    def __init__(self, host_ports, events_port):
        self.host_ports = list(host_ports)
        self.events_port = events_port
        self.routed = []  # (first request line, port), for tests to check the spread
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        with client:
            head = b""
            while b"\r\n" not in head and len(head) < 65536:
                piece = client.recv(65536)
                if not piece:
                    return
                head += piece
            self._forward(client, head)

    def _forward(self, client, head):
        line = head.split(b"\r\n", 1)[0]
        path = line.split(b" ")[1] if line.count(b" ") >= 2 else b""
        wants_events = self.events_port is not None and path.split(b"?")[0].endswith(b"/events")
        port = self.events_port if wants_events else random.choice(self.host_ports)
        self.routed.append((line.decode(errors="replace"), port))
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            upstream.sendall(head)
            answer = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            answer.start()
            _pump(client, upstream)
            answer.join()

    def close(self):
        self._closed = True
        self._listener.close()


def _pump(source, sink):
    """Copy until `source` ends, then half-close `sink` (the other direction may still flow)."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
