"""Raw-socket HTTP for requests no HTTP library will send: malformed lines, odd methods, dribbled heads."""
import socket

TIMEOUT_S = 10


def exchange(port, data, timeout_s=TIMEOUT_S):
    """Send `data` on a fresh connection and return every byte the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock):
    received = b""
    while True:
        try:
            piece = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return received
        if not piece:
            return received
        received += piece


def split_response(raw):
    """(status code, {lower-case header: value}, body) of one raw HTTP/1.x answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body
