#!/usr/bin/env python3
"""Rough latency: sequential keep-alive GETs, distinct ids (so the per-path
limiter never triggers), interleaved targets so machine load hits all alike.
  bench.py N name=host:port:path-prefix[:token] ..."""
import http.client, sys, time, statistics
n = int(sys.argv[1]); targets = []
for spec in sys.argv[2:]:
    name, rest = spec.split("=", 1); host, port, prefix, *tok = rest.split(":", 3)
    hdr = {"authorization": "Bearer " + tok[0]} if tok else {}
    targets.append((name, http.client.HTTPConnection(host, int(port)), prefix, hdr, []))
for i in range(n):
    for name, conn, prefix, hdr, lat in targets:
        t = time.perf_counter(); conn.request("GET", f"{prefix}/pay_{i}?expand=x", headers=hdr)
        r = conn.getresponse(); r.read(); lat.append((time.perf_counter() - t) * 1000)
        assert r.status == 200, (name, r.status)
for name, _, _, _, lat in targets:
    lat.sort(); q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"{name:28s} n={len(lat)} p50={q(.5):.2f}ms p90={q(.9):.2f}ms p99={q(.99):.2f}ms mean={statistics.mean(lat):.2f}ms")
