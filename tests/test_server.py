"""The demo web server: own files only, right MIME types, strict CSP, GET/HEAD only, loopback default."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

from mobile_demo import server as srv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def models_dir(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    (d / "manifest.json").write_text('{"models": []}\n')
    (d / "tiny.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    (d / ".hidden").write_text("secret")
    (tmp_path / "outside.txt").write_text("outside")
    return d


@pytest.fixture()
def server(models_dir):
    s = srv.make_server("127.0.0.1", 0, models_dir=str(models_dir))
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


def request(server, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    # http.client sends the path as given (no normalisation), as an attacker's client would
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


def test_page_is_served_with_csp(server):
    status, headers, body = request(server, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'data-testid="suggestions"' in body
    csp = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["connect-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert "'wasm-unsafe-eval'" in directives["script-src"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "http" not in csp and "*" not in csp
    # the import map is allowed by its hash, and that hash matches the page
    assert srv.inline_script_hashes()[0] in directives["script-src"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path, mime",
    [
        ("/js/app.js", "text/javascript"),
        ("/css/app.css", "text/css"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/emoji_keyboard.json", "application/json"),
        ("/models/tiny.tflite", "application/octet-stream"),
        ("/models/manifest.json", "application/json"),
        ("/icons/icon-192.png", "image/png"),
    ],
)
def test_mime_types(server, path, mime):
    status, headers, _ = request(server, path)
    assert status == 200, path
    assert headers["Content-Type"].split(";")[0] == mime


def test_litert_files_come_from_node_modules_or_vendor(server):
    if srv.resolve("/vendor/litertjs/core/dist/index.js") is None:
        pytest.skip("LiteRT.js is not installed (npm ci in mobile_demo/)")
    status, headers, _ = request(server, "/vendor/litertjs/core/dist/index.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, headers, body = request(server, "/vendor/litertjs/core/wasm/litert_wasm_internal.wasm", "HEAD")
    assert status == 200 and headers["Content-Type"] == "application/wasm" and body == b""
    assert int(headers["Content-Length"]) > 1_000_000
    status, _, _ = request(server, "/vendor/litertjs/wasm-utils/dist/index.js")
    assert status == 200
    status, _, _ = request(server, "/vendor/litertjs/other/package.json")
    assert status == 404


def test_mime_table_has_the_types_the_page_needs():
    assert srv.mime_type("x.wasm") == "application/wasm"
    assert srv.mime_type("x.tflite") == "application/octet-stream"
    assert srv.mime_type("x.mjs").startswith("text/javascript")
    assert srv.mime_type("x.webmanifest") == "application/manifest+json"


@pytest.mark.parametrize(
    "path",
    [
        "/../server.py",
        "/..%2fserver.py",
        "/%2e%2e/server.py",
        "/models/../../outside.txt",
        "/models/..%2f..%2foutside.txt",
        "/models/%2e%2e/%2e%2e/outside.txt",
        "/js/..%5c..%5cserver.py",
        "/models/.hidden",
        "//etc/passwd",
        "/%00",
        "/vendor/litertjs/core/../../../server.py",
        "/vendor/litertjs/core/..%2f..%2f..%2f..%2fpackage.json",
        "/no-such-file.js",
        "/models/",
        "/js",
    ],
)
def test_traversal_and_unknown_paths_are_404(server, path):
    status, headers, body = request(server, path)
    assert status == 404, path
    assert b"outside" not in body and b"import" not in body and b"secret" not in body
    assert "Content-Security-Policy" in headers


def test_symlink_out_of_root_is_refused(server, models_dir, tmp_path):
    os.symlink(tmp_path / "outside.txt", models_dir / "link.txt")
    assert request(server, "/models/link.txt")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head(server, method):
    status, headers, _ = request(server, "/", method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_head_has_no_body(server):
    status, headers, body = request(server, "/js/app.js", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 100


def test_loopback_by_default():
    serve = __import__("mobile_demo.__main__", fromlist=["serve"]).serve
    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"
    assert srv.is_loopback("127.0.0.1") and srv.is_loopback("::1") and srv.is_loopback("localhost")
    assert not srv.is_loopback("0.0.0.0")


def test_port_in_use_is_one_clear_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "mobile_demo", "--port", str(port)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: cannot listen on 127.0.0.1:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_defaults_to_serve():
    from mobile_demo.__main__ import cli

    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0 and "serve" in r.output
    r = CliRunner().invoke(cli, ["--port", "abc"])  # read as `serve --port abc`
    assert r.exit_code == 2
    assert "Invalid value for '--port'" in r.output and "serve" in r.output


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_a_self_signed_certificate(models_dir, tmp_path):
    s = srv.make_server("127.0.0.1", 0, https=True, cert_dir=str(tmp_path), models_dir=str(models_dir))
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    try:
        ctx = ssl.create_default_context(cafile=s.cert_path)
        conn = http.client.HTTPSConnection("127.0.0.1", s.server_address[1], context=ctx, timeout=10)
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.status == 200 and b"Emotekit" in r.read()
        conn.close()
    finally:
        s.shutdown()
        s.server_close()


# --- errors, TLS, slow clients, load (issue 27) ------------------------------------------------------

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy",
                    "Cross-Origin-Embedder-Policy", "Cross-Origin-Resource-Policy", "Permissions-Policy")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def assert_security_headers(headers, what=""):
    missing = [h for h in SECURITY_HEADERS if h not in headers]
    assert not missing, f"{what}: no {missing} in {headers}"
    assert headers["Content-Security-Policy"] == srv.content_security_policy()


def raw_exchange(port, data: bytes, tls: ssl.SSLContext | None = None, timeout: float = 20):
    """Sends `data` as is on a fresh connection, reads to the server's close: (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
    with sock:
        sock.sendall(data)
        chunks = []
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# Each request is sent whole and read to its end by the server before it answers (no unread bytes, so
# closing the connection resets nothing): http.server's own error paths.
BAD_REQUESTS = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400),
    "request line too long": (b"GET /" + b"a" * (65537 - 5), 414),
    "header line too long": (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * (65537 - 3), 431),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"H: v\r\n" * 101, 431),
    "unknown HTTP version": (b"GET / HTTP/2.0\r\n\r\n", 505),
    "bad version string": (b"GET / HTTX/1.1\r\n\r\n", 400),
    "HTTP/0.9 request": (b"GET /\r\n", 400),  # its answer could carry no headers at all
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_http_servers_own_errors_carry_the_security_headers(server, case):
    data, code = BAD_REQUESTS[case]
    status, headers, body = raw_exchange(server.server_address[1], data)
    assert status == code
    assert_security_headers(headers, case)
    assert headers["Connection"] == "close" and headers["Content-Type"].startswith("text/plain")
    assert body.startswith(f"{code} ".encode()) and int(headers["Content-Length"]) == len(body)


@pytest.fixture()
def https_server(models_dir, tmp_path):
    servers = []

    def start(client_timeout=srv.CLIENT_TIMEOUT, https=True):
        s = srv.make_server("127.0.0.1", 0, https=https, cert_dir=str(tmp_path) if https else None,
                            models_dir=str(models_dir), client_timeout=client_timeout)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
        ctx = ssl.create_default_context(cafile=s.cert_path) if https else None
        return s, ctx

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@needs_openssl
def test_a_silent_client_does_not_hold_the_tls_handshake_of_others(https_server):
    s, ctx = https_server()
    port = s.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10):  # connects, never says hello
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        conn.request("GET", "/js/app.js")
        r = conn.getresponse()
        assert r.status == 200 and len(r.read()) > 100
        assert_security_headers(dict(r.getheaders()), "https")
        conn.close()


@pytest.mark.parametrize("https", [False, pytest.param(True, marks=needs_openssl)], ids=["http", "https"])
def test_a_silent_client_is_dropped_after_the_timeout(https_server, https):
    import time

    s, _ = https_server(client_timeout=0.5, https=https)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", s.server_address[1]), timeout=10) as sock:
        sock.sendall(b"" if https else b"GET / HTTP/1.1\r\n")  # TLS: not even a hello; HTTP: half a request
        assert sock.recv(100) == b""  # the server hangs up ...
    assert time.monotonic() - t0 < 5  # ... after its timeout, not never


@pytest.mark.parametrize("https", [False, pytest.param(True, marks=needs_openssl)], ids=["http", "https"])
def test_200_concurrent_requests_and_a_slow_client(https_server, https):
    """200 requests at once (pages, models, 404, 405, a bad request) while one client holds a connection
    mid-request (and, over TLS, one more before its handshake): every one answered, with the headers."""
    import concurrent.futures
    import time

    s, ctx = https_server(https=https)
    port = s.server_address[1]
    kinds = [("GET", "/", 200), ("GET", "/js/app.js", 200), ("HEAD", "/models/tiny.tflite", 200),
             ("GET", "/models/manifest.json", 200), ("GET", "/nope.js", 404), ("POST", "/", 405), ("RAW", b"BAD\r\n\r\n", 400)]
    slow = socket.create_connection(("127.0.0.1", port), timeout=30)
    silent = socket.create_connection(("127.0.0.1", port), timeout=30) if https else None
    if https:
        slow = ctx.wrap_socket(slow, server_hostname="127.0.0.1")
    slow.sendall(b"GET /js/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and the rest later
    barrier = threading.Barrier(200, timeout=60)

    def one(i):
        method, path, code = kinds[i % len(kinds)]
        barrier.wait()
        if method == "RAW":
            status, headers, _ = raw_exchange(port, path, ctx, timeout=30)
        else:
            conn = (http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30) if https
                    else http.client.HTTPConnection("127.0.0.1", port, timeout=30))
            conn.request(method, path)
            r = conn.getresponse()
            r.read()
            status, headers = r.status, dict(r.getheaders())
            conn.close()
        return code, status, headers

    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(200) as pool:
            results = list(pool.map(one, range(200)))
        elapsed = time.monotonic() - t0
        assert len(results) == 200
        for code, status, headers in results:
            assert status == code
            assert_security_headers(headers, f"{code}")
        assert elapsed < 60
        # the slow clients, still connected, are answered too
        slow.sendall(b"\r\n")
        r = http.client.HTTPResponse(slow)
        r.begin()
        assert r.status == 200 and len(r.read()) > 100
        assert_security_headers(dict(r.getheaders()), "slow client")
        if silent is not None:
            silent = ctx.wrap_socket(silent, server_hostname="127.0.0.1")
            silent.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            r = http.client.HTTPResponse(silent)
            r.begin()
            assert r.status == 200 and b"Emotekit" in r.read()
    finally:
        slow.close()
        if silent is not None:
            silent.close()


@needs_openssl
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_the_https_key_is_removed_when_the_server_is_stopped(tmp_path, signame):
    import signal

    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "mobile_demo", "--https", "--port", "0"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cert = None
        for line in p.stdout:
            if "self-signed certificate" in line:
                cert = line.split("certificate ", 1)[1].split(":", 1)[0]
                break
        assert cert and os.path.isfile(os.path.join(os.path.dirname(cert), "key.pem")), cert
        folder = os.path.dirname(cert)
        assert os.path.dirname(folder) == str(tmp_path)
        p.send_signal(getattr(signal, signame))
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert not os.path.exists(folder)
