"""bench_browser's parts that run without a browser: its throttling proxy and its docs section."""

import socket
import threading

from sparecycles.web.management.commands.bench_browser import (
    DOCS_BEGIN,
    DOCS_END,
    Command,
    ThrottledProxy,
)


def echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_the_throttling_proxy_passes_every_byte_both_ways():
    server, port = echo_server()
    proxy = ThrottledProxy(port, down_bps=50_000_000, up_bps=50_000_000, rtt_s=0.01)
    try:
        payload = bytes(range(256)) * 400   # 100 KiB
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += client.recv(65536)
        assert got == payload
    finally:
        proxy.stop()
        server.close()


def test_its_docs_section_is_replaced_not_repeated(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nother sections\n")
    command = Command()
    command.lines = ["run 1 first"]
    command.write_docs(doc, "header one")
    command.lines = ["run 1 second"]
    command.write_docs(doc, "header two")
    text = doc.read_text()
    assert text.startswith("# Performance\n\nother sections\n")
    assert text.count(DOCS_BEGIN) == text.count(DOCS_END) == 1
    assert "run 1 second" in text and "header two" in text and "run 1 first" not in text
