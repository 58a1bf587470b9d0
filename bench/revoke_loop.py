#!/usr/bin/env python3
"""Revokes access tokens through the auth service's RFC 7009 endpoint, one every
INTERVAL_MS milliseconds, for SECONDS seconds (or until the tokens run out), over one
keep-alive connection. Prints one JSON line: revocations made, their call latency (p50 /
p99 ms) and the achieved interval.

    python3 bench/revoke_loop.py HOST:PORT TOKENS_FILE INTERVAL_MS SECONDS OUT_REVOKED
"""
import http.client
import json
import sys
import time
import urllib.parse


def main():
    addr, tokens_file, interval_ms, seconds, out = sys.argv[1:6]
    interval = float(interval_ms) / 1000
    host, port = addr.rsplit(":", 1)
    tokens = [t for t in open(tokens_file, encoding="ascii").read().split("\n") if t]
    conn = http.client.HTTPConnection(host, int(port))
    start = time.monotonic()
    deadline = start + float(seconds)
    calls, revoked = [], []
    next_at = start
    for token in tokens:
        now = time.monotonic()
        if now >= deadline:
            break
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        body = urllib.parse.urlencode(
            {"token": token, "token_type_hint": "access_token", "client_id": "wristband"}
        )
        t0 = time.monotonic()
        conn.request("POST", "/oauth2/revoke", body,
                     {"content-type": "application/x-www-form-urlencoded"})
        res = conn.getresponse()
        res.read()
        calls.append((time.monotonic() - t0) * 1000)
        if res.status != 200:
            sys.exit(f"revoke answered {res.status}")
        revoked.append(token)
    elapsed = time.monotonic() - start
    with open(out, "w", encoding="ascii") as f:
        f.write("\n".join(revoked) + "\n")
    calls.sort()
    pct = lambda p: calls[min(len(calls) - 1, int(len(calls) * p))] if calls else 0
    print(json.dumps({
        "label": "revocations", "revoked": len(revoked),
        "interval_ms": round(elapsed * 1000 / max(1, len(revoked)), 2),
        "call_p50_ms": round(pct(0.5), 3), "call_p99_ms": round(pct(0.99), 3),
    }))


if __name__ == "__main__":
    main()
