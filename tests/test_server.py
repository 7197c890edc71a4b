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
