"""An API service with no token code: the gate in front of it decides, and it only reads
the identity headers that the reverse proxy sets from the gate's answer.

    python3 app.py --port 5000        (or PORT=5000 python3 app.py)

It must only be reachable through the proxy (it listens on 127.0.0.1): the proxy removes
any client-sent X-Auth-Request-*, Remote-User and Remote-Groups header and sets them from
the gate's decision, so what this service reads was verified by the gate.
"""

import argparse
import os
import sys

from flask import Flask, jsonify, request

app = Flask(__name__)


def identity():
    """The caller as the gate saw it: (user, role), or (None, None) when anonymous."""
    return request.headers.get("X-Auth-Request-User"), request.headers.get(
        "X-Auth-Request-Role"
    )


@app.get("/health")
def health():
    """Anonymous: the gate's policy lets it through without a token."""
    return jsonify(status="ok")


@app.get("/favicon.ico")
def favicon():
    """Anonymous (the policy says so): browsers ask for it on every origin on their own,
    the auth service's pages under /auth/ included, and a 401 or 404 would be a console
    error on each page."""
    return "", 204


@app.get("/resource")
def resource():
    """Any signed-in user."""
    user, role = identity()
    if user is None:
        # Only reached when the proxy is misconfigured: the gate would have refused.
        return jsonify(error="unauthorized", error_description="no identity from the gate"), 401
    return jsonify(message="hello from the API service", user=user, role=role)


@app.get("/admin")
def admin():
    """Admins only. The gate's policy guards it too (`role:admin`); this check is the
    service's own second line."""
    user, role = identity()
    if user is None:
        return jsonify(error="unauthorized", error_description="no identity from the gate"), 401
    if role != "admin":
        return jsonify(error="forbidden", error_description="the admin role is required"), 403
    return jsonify(message="hello, admin", user=user)


@app.route("/headers", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
@app.route("/headers/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def headers(rest=None):
    """Echoes every header this service received, as a JSON object of lists (a header
    sent twice shows twice), with the method and path: what the proxy let through."""
    received = {}
    for name, value in request.headers.items():
        received.setdefault(name.lower(), []).append(value)
    return jsonify(method=request.method, path=request.full_path.rstrip("?"), headers=received)


@app.get("/")
def index():
    """A page for browsers: who is signed in."""
    user, role = identity()
    return (
        "<!doctype html><html><head><title>app</title>"
        '<link rel="icon" href="data:,"></head><body>'
        f'<h1 id="app">App</h1><p id="user">{escape(user or "")}</p>'
        f'<p id="role">{escape(role or "")}</p></body></html>'
    )


@app.get("/page/<name>")
def page(name):
    """Another protected page, for browsers."""
    user, _ = identity()
    return (
        "<!doctype html><html><head><title>page</title>"
        '<link rel="icon" href="data:,"></head><body>'
        f'<h1 id="page">{escape(name)}</h1><p id="user">{escape(user or "")}</p>'
        "</body></html>"
    )


def escape(text):
    """HTML-escapes text for the pages above."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()
    # One line on stdout once bound, as the other services of the project print it.
    import werkzeug.serving

    server = werkzeug.serving.make_server(args.host, args.port, app, threaded=True)
    host, port = server.socket.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
