#!/usr/bin/env python3
"""`make slo` helper (scripts/slo-run.sh).

  slo_mix.py prepare <dir> <rate> <duration> <entrance>
      creates a client with the journey's scopes, tokens, a recipient,
      payments to confirm and to refund and a ledger account, then writes
      <dir>/targets.jsonl: rate x duration vegeta targets (JSON format), each
      used once, in a fixed realistic mix (MIX below).
  slo_mix.py report <dir> <start> <end> <html> <rate> <duration> <entrance> <load_end>
      reads every SLO of slo/*.yaml back from Prometheus over the run
      (the SLO's own error/total PromQL with the run's window), prints
      objective / measured / error budget consumed / pass-fail, and writes
      the table, vegeta's summary and latency histogram and the services'
      latency histograms as an HTML report.

Standard library + PyYAML (Debian's python3-yaml) only."""
import base64
import html
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUTH, PAY, BOOK, COMM = (f"http://127.0.0.1:{p}" for p in (8001, 8002, 8003, 8004))
PROMETHEUS = os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:9190")
ADMIN_SECRET = "local-only-admin-secret"

# Share of the requests, per 100: what a day of the platform looks like,
# reads outnumbering writes, every public flow present.
MIX = [
    ("token grant (auth)", 10),
    ("create payment", 20),
    ("confirm payment", 15),
    ("refund payment", 5),
    ("read payment", 15),
    ("ledger read: account + balance", 15),
    ("create notification", 10),
    ("read notification", 10),
]


def call(method, url, body=None, headers=None, form=None, basic=None):
    data, hdrs = None, dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["content-type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    if basic:
        hdrs["authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def must(status_body, what):
    status, body = status_body
    if status >= 300:
        sys.exit(f"[slo] {what} failed: {status} {body}")
    return body


def token(client, secret, scope, audience):
    return must(call("POST", f"{AUTH}/oauth2/token", basic=(client, secret), form={
        "grant_type": "client_credentials", "scope": scope, "audience": audience}), f"token {audience}")["access_token"]


def target(method, url, tok=None, body=None, headers=None):
    h = {k: [v] for k, v in (headers or {}).items()}
    if tok:
        h["Authorization"] = [f"Bearer {tok}"]
    t = {"method": method, "url": url, "header": h}
    if body is not None:
        h["Content-Type"] = ["application/json"]
        t["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return t


def prepare(out, rate, duration, entrance):
    rate = int(rate)
    seconds = parse_duration(duration)
    n = rate * seconds
    counts = {name: max(1, round(n * share / 100)) for name, share in MIX}
    run = uuid.uuid4().hex[:8]
    admin = token("platform-admin", ADMIN_SECRET, "auth:admin", "auth")
    client = f"slo-{run}"
    created = must(call("POST", f"{AUTH}/admin/clients", headers={"authorization": f"Bearer {admin}"}, body={
        "client_id": client, "name": "make slo", "grant_types": ["client_credentials"],
        "allowed_scopes": ["payments:read", "payments:write", "bookkeeping:read", "bookkeeping:write",
                           "communication:read", "communication:write"],
        "allowed_audiences": ["payments", "bookkeeping", "communication"]}), "client")
    secret = created["client_secret"]
    pay = token(client, secret, "payments:read payments:write", "payments")
    book = token(client, secret, "bookkeeping:read bookkeeping:write", "bookkeeping")
    comm = token(client, secret, "communication:read communication:write", "communication")
    customer = f"cus_slo_{run}"
    must(call("PUT", f"{COMM}/v1/recipients/{customer}", headers={"authorization": f"Bearer {comm}"},
              body={"email": f"{customer}@example.test", "locale": "en"}), "recipient")

    def new_payment(tag):
        return must(call("POST", f"{PAY}/v1/payments", headers={"authorization": f"Bearer {pay}", "Idempotency-Key": f"{run}-{tag}"},
                         body={"amount": 1250, "currency": "EUR", "customer_reference": customer}), "payment")["id"]

    print(f"[slo] setting up: {counts['confirm payment']} payments to confirm, {counts['refund payment']} to refund", file=sys.stderr)
    to_confirm = [new_payment(f"c{i}") for i in range(counts["confirm payment"])]
    to_refund = []
    for i in range(counts["refund payment"]):
        pid = new_payment(f"r{i}")
        must(call("POST", f"{PAY}/v1/payments/{pid}/confirm", headers={"authorization": f"Bearer {pay}", "Idempotency-Key": f"{run}-rc{i}"},
                  body={"card_number": "4242424242424242"}), "confirm for refund")
        to_refund.append(pid)
    account = str(uuid.uuid4())
    must(call("POST", f"{BOOK}/v1/accounts", headers={"authorization": f"Bearer {book}", "Idempotency-Key": f"{run}-acct"},
              body={"id": account, "code": f"asset:slo-{run}:eur", "name": "make slo", "kind": "asset", "currency": "EUR"}), "account")
    note = must(call("POST", f"{COMM}/v1/notifications", headers={"authorization": f"Bearer {comm}", "Idempotency-Key": f"{run}-n"},
                     body={"recipient": {"id": customer}, "template": "security_alert", "category": "security", "data": {"event": "a new sign-in"}}), "notification")

    targets = []
    for i in range(counts["token grant (auth)"]):
        targets.append({"method": "POST", "url": f"{AUTH}/oauth2/token", "header": {
            "Authorization": ["Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()],
            "Content-Type": ["application/x-www-form-urlencoded"]},
            "body": base64.b64encode(b"grant_type=client_credentials&scope=payments:read&audience=payments").decode()})
    for i in range(counts["create payment"]):
        targets.append(target("POST", f"{PAY}/v1/payments", pay, {"amount": 990 + i, "currency": "EUR", "customer_reference": customer},
                              {"Idempotency-Key": f"{run}-lc{i}"}))
    for i, pid in enumerate(to_confirm):
        targets.append(target("POST", f"{PAY}/v1/payments/{pid}/confirm", pay, {"card_number": "4242424242424242"},
                              {"Idempotency-Key": f"{run}-lcf{i}"}))
    for i, pid in enumerate(to_refund):
        targets.append(target("POST", f"{PAY}/v1/payments/{pid}/refunds", pay, {"amount": 100},
                              {"Idempotency-Key": f"{run}-lrf{i}"}))
    for i in range(counts["read payment"]):
        targets.append(target("GET", f"{PAY}/v1/payments/{random.choice(to_confirm)}", pay))
    for i in range(counts["ledger read: account + balance"]):
        targets.append(target("GET", f"{BOOK}/v1/accounts/{account}" + ("/balance" if i % 2 else ""), book))
    for i in range(counts["create notification"]):
        targets.append(target("POST", f"{COMM}/v1/notifications", comm,
                              {"recipient": {"id": customer}, "template": "security_alert", "category": "security", "data": {"event": "a new sign-in"}},
                              {"Idempotency-Key": f"{run}-ln{i}"}))
    for i in range(counts["read notification"]):
        targets.append(target("GET", f"{COMM}/v1/notifications/{note['id']}", comm))
    random.Random(run).shuffle(targets)
    with open(os.path.join(out, "targets.jsonl"), "w") as f:
        for t in targets:
            f.write(json.dumps(t) + "\n")
    with open(os.path.join(out, "mix.json"), "w") as f:
        json.dump({"counts": counts, "total": len(targets), "entrance": entrance}, f)
    print(f"[slo] {len(targets)} requests: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)


def parse_duration(d):
    m = re.fullmatch(r"(\d+)(s|m)?", d)
    if not m:
        sys.exit(f"[slo] duration {d!r}: use e.g. 60s or 2m")
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def prom(expr, at):
    q = urllib.parse.urlencode({"query": expr, "time": str(at)})
    with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?{q}", timeout=30) as r:
        res = json.load(r)["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def report(out, start, end, html_path, rate, duration, entrance, load_end):
    import yaml
    start, end = int(start), int(end)
    window = f"{end - start}s"
    rows = []
    for path in sorted(os.listdir(os.path.join(HERE, "slo"))):
        if not path.endswith(".yaml"):
            continue
        spec = yaml.safe_load(open(os.path.join(HERE, "slo", path)))
        for slo in spec["slos"]:
            ev = slo["sli"]["events"]
            err = ev["error_query"].replace("{{.window}}", window)
            tot = ev["total_query"].replace("{{.window}}", window)
            errors, total = prom(err, end), prom(tot, end)
            objective = float(slo["objective"])
            budget = 1 - objective / 100
            if not total:
                rows.append((spec["service"], slo["name"], objective, None, None, "no traffic"))
                continue
            ratio = max(0.0, (errors or 0.0) / total)
            consumed = ratio / budget if budget else float("inf")
            rows.append((spec["service"], slo["name"], objective, ratio, consumed, "PASS" if ratio <= budget else "FAIL"))
    head = f"{'service':<14} {'SLO':<28} {'objective':>9} {'measured':>9} {'budget used':>11}  result"
    lines = [head, "-" * len(head)]
    for svc, name, obj, ratio, consumed, verdict in rows:
        good = "-" if ratio is None else f"{100 * (1 - ratio):.3f}%"
        used = "-" if consumed is None else f"{100 * consumed:.1f}%"
        lines.append(f"{svc:<14} {name:<28} {obj:>8}% {good:>9} {used:>11}  {verdict}")
    table = "\n".join(lines)
    print(table)
    mix = json.load(open(os.path.join(out, "mix.json")))
    vegeta = open(os.path.join(out, "vegeta.txt")).read()
    hist = open(os.path.join(out, "hist.txt")).read()
    # The services' own latency histograms over the run (bucket counts).
    svc_hist = []
    for svc in ("auth", "payments", "bookkeeping", "communication"):
        sel = f'job="services",service="{svc}",route=~"/v1/.*|/oauth2/.*"'
        q = urllib.parse.urlencode({"query": f"sum by (le) (increase(http_request_duration_seconds_bucket{{{sel}}}[{window}]))", "time": str(end)})
        with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?{q}", timeout=30) as r:
            res = json.load(r)["data"]["result"]
        buckets = sorted(((float("inf") if b["metric"]["le"] == "+Inf" else float(b["metric"]["le"])), float(b["value"][1])) for b in res)
        svc_hist.append((svc, buckets))

    def bars(buckets):
        out, prev = [], 0.0
        total = buckets[-1][1] if buckets else 0
        for le, cum in buckets:
            n = max(0.0, cum - prev)
            prev = cum
            width = int(300 * n / total) if total else 0
            label = "+Inf" if le == float("inf") else f"≤ {le * 1000:g} ms"
            out.append(f"<tr><td>{label}</td><td>{n:.0f}</td><td><div style='background:#4a7;height:10px;width:{width}px'></div></td></tr>")
        return "<table>" + "".join(out) + "</table>"

    verdict_css = lambda v: {"PASS": "#dfd", "FAIL": "#fdd"}.get(v, "#eee")
    trs = "".join(
        f"<tr style='background:{verdict_css(v)}'><td>{s}</td><td>{n}</td><td>{o}%</td><td>{'-' if r is None else f'{100 * (1 - r):.3f}%'}</td>"
        f"<td>{'-' if c is None else f'{100 * c:.1f}%'}</td><td>{v}</td></tr>" for s, n, o, r, c, v in rows)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>make slo {time.strftime('%Y-%m-%d %H:%M', time.gmtime(start))} UTC</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:1.5em}} td,th{{border:1px solid #ccc;padding:3px 8px}} pre{{background:#f6f6f6;padding:1em}}</style></head><body>
<h1>SLO run {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(start))} UTC</h1>
<p>{mix['total']} requests at {rate}/s for {duration} with vegeta, entrance: {html.escape(entrance)}; SLIs read from Prometheus over the {window} from the start of the load to 20 s after its end ({load_end}). Mix: {html.escape(', '.join(f'{k} {v}' for k, v in mix['counts'].items()))}.
Machine: {html.escape(os.uname().nodename)}, {os.cpu_count()} cores (shared).</p>
<table><tr><th>service</th><th>SLO</th><th>objective</th><th>measured</th><th>error budget consumed</th><th>result</th></tr>{trs}</table>
<h2>Client side (vegeta)</h2><pre>{html.escape(vegeta)}</pre><pre>{html.escape(hist)}</pre>
<p>Latency over time: <a href="{html.escape(os.path.basename(html_path).replace('.html', '-latency.html'))}">vegeta plot</a></p>
<h2>Server side: latency histograms of each service's API (Prometheus)</h2>
{''.join(f'<h3>{s}</h3>' + bars(b) for s, b in svc_hist)}
</body></html>"""
    with open(html_path, "w") as f:
        f.write(page)
    print(f"\nreport: {html_path}")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "prepare":
        prepare(*args)
    elif cmd == "report":
        sys.exit(report(*args))
    else:
        sys.exit(f"usage: {sys.argv[0]} prepare|report ...")
