"""The emoji keyboard's web server: its own files only, strict headers, loopback by default.

What it serves (GET and HEAD, nothing else):

- `/` and `/<path>`: `mobile_demo/static/` (the page, its scripts, the emoji tables, `vendor/`).
- `/models/<path>`: `mobile_demo/models/` (the shipped `.tflite` files and `manifest.json`), or the
  folder given as `--models`.
- `/vendor/litertjs/{core,wasm-utils}/<path>`: LiteRT.js's dist and wasm files, from the copies
  `setup_assets` makes in `static/vendor/litertjs/`, else straight from `mobile_demo/node_modules/@litertjs/`.

Every answer, the error pages that `http.server` makes itself (400, 414, 431, ...) included, carries a
Content-Security-Policy that lets the page talk to its own origin only
(`connect-src 'self'`), so no camera frame can leave the phone even by mistake. The import map in
`index.html` is an inline script; its sha256 is allowed by hash, computed from the file itself.

Example:
    >>> server = make_server("127.0.0.1", 0)      # port 0: any free port
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.parse

from core.cli import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
MODELS = os.path.join(HERE, "models")
NODE_LITERT = os.path.join(HERE, "node_modules", "@litertjs")
LITERT_PACKAGES = ("core", "wasm-utils")

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".tflite": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}

BASE_CSP = (
    "default-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval'{hashes}; "
    "connect-src 'self'; "
    "img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; "
    "style-src 'self'; "
    "font-src 'self'; "
    "worker-src 'self'; "
    "manifest-src 'self'; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors 'none'"
)

INLINE_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.S | re.I)


def inline_script_hashes(html_path: str = os.path.join(STATIC, "index.html")) -> list[str]:
    """CSP hash sources for the inline scripts (the import map) of the page."""
    try:
        with open(html_path, encoding="utf-8") as f:
            html = f.read()
    except OSError:
        return []
    out = []
    for m in INLINE_SCRIPT.finditer(html):
        body = m.group(1)
        if body.strip():
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            out.append(f"'sha256-{digest}'")
    return out


def content_security_policy() -> str:
    hashes = "".join(" " + h for h in inline_script_hashes())
    return BASE_CSP.format(hashes=hashes)


def mime_type(path: str) -> str:
    return MIME_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


def _roots(url_path: str, models_dir: str) -> list[tuple[str, str]]:
    """(folder, path inside it) candidates for a URL path, in the order they are tried."""
    if url_path.startswith("/models/"):
        return [(models_dir, url_path[len("/models/"):])]
    out = []
    m = re.match(r"^/vendor/litertjs/([a-z-]+)/(.*)$", url_path)
    if m and m.group(1) in LITERT_PACKAGES:
        out.append((os.path.join(STATIC, "vendor", "litertjs", m.group(1)), m.group(2)))
        out.append((os.path.join(NODE_LITERT, m.group(1)), m.group(2)))
        return out
    rel = url_path.lstrip("/") or "index.html"
    return [(STATIC, rel)]


def resolve(url_path: str, models_dir: str = MODELS) -> str | None:
    """The file a URL path names, or None. Refuses `..`, dot files, backslashes and escapes."""
    path = urllib.parse.unquote(url_path.split("?", 1)[0].split("#", 1)[0])
    if not path.startswith("/") or "\\" in path or "\0" in path:
        return None
    parts = [p for p in path.split("/") if p]
    if any(p.startswith(".") for p in parts):  # "..", "." and hidden files
        return None
    if path.endswith("/"):
        path += "index.html"
    for root, rel in _roots(path, models_dir):
        root_real = os.path.realpath(root)
        full = os.path.realpath(os.path.join(root_real, rel))
        if os.path.commonpath([root_real, full]) != root_real:
            return None
        if os.path.isfile(full):
            return full
    return None


# Seconds a client may stay silent (in the TLS handshake, in a request, between keep-alive requests)
# before its connection is closed. Each connection has its own thread: a slow one holds only itself.
CLIENT_TIMEOUT = 30.0


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "emotekit"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def setup(self):
        """In this connection's own thread: the timeout, then (HTTPS) the TLS handshake, which the
        serving thread's accept() no longer does (one silent client would hold every other)."""
        self.timeout = getattr(self.server, "client_timeout", CLIENT_TIMEOUT)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def parse_request(self) -> bool:
        """As http.server's, but an HTTP/0.9 request ("GET /", no version) is refused: its answer would
        carry no headers, the security headers neither. Checked first: http.server would wait for headers
        that such a request never sends."""
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        if len(line.split()) == 2:
            self.command, self.path, self.requestline = None, line.split()[1], line
            self.request_version = "HTTP/1.0"
            self.send_error(400, "HTTP/0.9 is not served")
            return False
        return super().parse_request()

    def send_response(self, code, message=None):
        """Every response, whoever makes it (ours, or http.server's own error pages), gets the security headers."""
        super().send_response(code, message)
        self._security_headers()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line 400, URI too long 414, headers too large 431, ...):
        the same plain-text page as ours, and the connection closed (its request could not be read)."""
        short = self.responses.get(code, ("error",))[0]
        if self.request_version == "HTTP/0.9":  # http.server's default before it could read a version:
            self.request_version = "HTTP/1.0"  # without this, the answer would have no status line nor headers
        self.log_error("code %d, message %s", code, message or short)
        self.close_connection = True
        self._error(code, (message or short).lower(), {"Connection": "close"})

    def _security_headers(self):
        self.send_header("Content-Security-Policy", content_security_policy())
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")

    def _error(self, code: int, message: str, extra: dict | None = None):
        body = f"{code} {message}\n".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 205, 304):
            self.wfile.write(body)

    def _serve(self, head: bool):
        full = resolve(self.path, self.server.models_dir)
        if full is None:
            return self._error(404, "not found")
        try:
            with open(full, "rb") as f:
                data = f.read()
        except OSError:
            return self._error(404, "not found")
        self.send_response(200)
        self.send_header("Content-Type", mime_type(full))
        self.send_header("Content-Length", str(len(data)))
        # Always revalidate: the service worker keeps the offline copy.
        self.send_header("Cache-Control", "no-cache")
        if os.path.basename(full) == "sw.js":
            self.send_header("Service-Worker-Allowed", "/")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._serve(head=False)

    def do_HEAD(self):  # noqa: N802
        self._serve(head=True)

    def _not_allowed(self):
        self._error(405, "method not allowed", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of connections (a page load opens many) waits in the kernel, not in SYN retries

    def __init__(self, address, handler, verbose=False, models_dir=MODELS, client_timeout=CLIENT_TIMEOUT):
        host = address[0]
        try:
            if ipaddress.ip_address(host).version == 6:
                self.address_family = socket.AF_INET6
        except ValueError:
            pass
        self.verbose = verbose
        self.models_dir = models_dir
        self.client_timeout = client_timeout
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        """A client that fails its TLS handshake, goes silent past the timeout or hangs up is its own
        business: no traceback on the server's terminal (one line with --verbose). Anything else is a bug."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, OSError):  # ssl.SSLError, TimeoutError, ConnectionResetError, BrokenPipeError
            if self.verbose:
                print(f"{client_address[0]}: connection dropped ({type(err).__name__}: {err})", file=sys.stderr)
            return
        super().handle_error(request, client_address)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def self_signed_certificate(folder: str, host: str) -> tuple[str, str]:
    """Makes a fresh self-signed certificate (valid 30 days) with the `openssl` command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise UserError("--https needs the `openssl` command to make a certificate (apt-get install openssl)")
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    names = {"DNS:localhost", "IP:127.0.0.1"}
    try:
        names.add(f"IP:{ipaddress.ip_address(host)}")
    except ValueError:
        names.add(f"DNS:{host}")
    for ip in lan_addresses():
        names.add(f"IP:{ip}")
    cmd = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
           "-keyout", key, "-out", cert, "-subj", "/CN=emotekit local demo",
           "-addext", "subjectAltName=" + ",".join(sorted(names))]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"openssl could not make a certificate: {r.stderr.strip().splitlines()[-1:]}")
    return cert, key


def lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (best effort, no traffic sent)."""
    out = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # UDP connect sends nothing; it picks the outgoing interface
            out.add(s.getsockname()[0])
    except OSError:
        pass
    return sorted(a for a in out if not a.startswith("127."))


def make_server(host: str = "127.0.0.1", port: int = 8000, https: bool = False, verbose: bool = False,
                cert_dir: str | None = None, models_dir: str = MODELS, client_timeout: float = CLIENT_TIMEOUT) -> Server:
    """Binds the server (not yet serving). Raises UserError for a taken port or a bad host.

    With `https`, the certificate and its key go to `cert_dir`, else to a fresh private temporary folder
    (`server.temp_cert_dir`) that the caller removes when it stops (`python -m mobile_demo` does, on
    Ctrl+C and SIGTERM alike). The TLS handshake runs in each connection's thread (Handler.setup)."""
    try:
        server = Server((host, port), Handler, verbose=verbose, models_dir=models_dir, client_timeout=client_timeout)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    server.temp_cert_dir = None
    if https:
        folder = cert_dir or tempfile.mkdtemp(prefix="emotekit-cert-")
        try:
            cert, key = self_signed_certificate(folder, host)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
        except BaseException:
            server.server_close()
            if not cert_dir:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.cert_path = cert
        server.temp_cert_dir = None if cert_dir else folder
    return server
