#!/usr/bin/env python3
"""Mints N distinct access tokens from a running `wristband serve`: one login, then a chain
of N - 1 refreshes over one keep-alive connection (every refresh issues a new access
token). Writes one token per line to OUT.

    python3 bench/mint_tokens.py HOST:PORT USER PASSWORD N OUT
"""
import http.client
import json
import sys


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    if res.status != 200:
        sys.exit(f"{path} answered {res.status}: {data[:200]!r}")
    return json.loads(data)


def main():
    addr, user, password, n, out = sys.argv[1:6]
    n = int(n)
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    body = post(conn, "/v1/login", {"username": user, "password": password})
    tokens = [body["access_token"]]
    refresh = body["refresh_token"]
    while len(tokens) < n:
        body = post(conn, "/v1/refresh", {"refresh_token": refresh})
        tokens.append(body["access_token"])
        refresh = body["refresh_token"]
    if len(set(tokens)) != n:
        sys.exit("the minted tokens are not all distinct")
    with open(out, "w", encoding="ascii") as f:
        f.write("\n".join(tokens) + "\n")


if __name__ == "__main__":
    main()
