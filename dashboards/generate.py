#!/usr/bin/env python3
"""Writes the Grafana dashboards (dashboards/<service>.json, overview.json)
and the Prometheus console page (dashboards/consoles/platform.html).

The dashboards are generated so that every service's board has the same
panels over the same metrics; `make slo-check` (scripts/check-dashboards.py)
parses every panel's PromQL with promtool and checks the JSON is a Grafana
dashboard. Run `python3 dashboards/generate.py` after changing this file and
commit the output.

Metrics (all really exported, checked by scraping `make up`):
  apps:   http_requests_total / http_request_duration_seconds{method,route,status}
          events_handled_total{topic,outcome}, event_age_seconds{topic}
  daprd:  dapr_http_server_request_count, dapr_component_pubsub_ingress_count,
          dapr_resiliency_cb_state
  Sloth:  slo:sli_error:ratio_rate5m, slo:period_error_budget_remaining:ratio
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = ["auth", "payments", "bookkeeping", "communication", "bookings"]
API = 'job="services",service="{s}",route=~"/v1/.*|/oauth2/.*|/admin/.*"'


def panel(pid, title, exprs, unit="short", x=0, y=0, w=12, h=8, kind="timeseries"):
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": e, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, (e, legend) in enumerate(exprs)
        ],
    }


def dashboard(uid, title, panels):
    return {
        "uid": uid,
        "title": title,
        "tags": ["lisasports", "slo"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "type": "datasource", "query": "prometheus",
            "label": "Prometheus", "current": {}, "hide": 0,
        }]},
        "annotations": {"list": []},
        "panels": panels,
    }


def service_panels(s):
    api = API.format(s=s)
    ps = [
        panel(1, "Request rate by route", [(f'sum by (route) (rate(http_requests_total{{{api}}}[$__rate_interval]))', "{{route}}")], "reqps", 0, 0),
        panel(2, "Server errors (5xx ratio)", [(f'sum(rate(http_requests_total{{{api},status=~"5.."}}[$__rate_interval])) / sum(rate(http_requests_total{{{api}}}[$__rate_interval]))', "5xx ratio")], "percentunit", 12, 0),
        panel(3, "Latency percentiles", [
            (f'histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{{api}}}[$__rate_interval])))', f"p{int(q*100)}")
            for q in (0.5, 0.95, 0.99)], "s", 0, 8),
        panel(4, "Error budget remaining (30 d)", [(f'slo:period_error_budget_remaining:ratio{{sloth_service="{s}"}}', "{{sloth_slo}}")], "percentunit", 12, 8),
        panel(5, "Burn rate (5 m)", [(f'slo:sli_error:ratio_rate5m{{sloth_service="{s}"}} / on (sloth_id, sloth_slo, sloth_service) group_left slo:error_budget:ratio{{sloth_service="{s}"}}', "{{sloth_slo}}")], "short", 0, 16),
        panel(6, "Sidecar: circuit breakers open", [(f'max by (name, target) (dapr_resiliency_cb_state{{service="{s}",status="open"}} == 1)', "{{name}} {{target}}")], "short", 12, 16),
    ]
    if s in ("bookkeeping", "communication"):
        ps += [
            panel(7, "Consumer lag: event age p99 by topic", [(f'histogram_quantile(0.99, sum by (le, topic) (rate(event_age_seconds_bucket{{job="services",service="{s}"}}[$__rate_interval])))', "{{topic}}")], "s", 0, 24),
            panel(8, "Events by outcome (rejected = dead-lettered)", [(f'sum by (topic, outcome) (rate(events_handled_total{{job="services",service="{s}"}}[$__rate_interval]))', "{{topic}} {{outcome}}")], "ops", 12, 24),
        ]
    return ps


def overview_panels():
    api = 'job="services",route=~"/v1/.*|/oauth2/.*|/admin/.*"'
    return [
        panel(1, "Request rate by service", [(f'sum by (service) (rate(http_requests_total{{{api}}}[$__rate_interval]))', "{{service}}")], "reqps", 0, 0),
        panel(2, "5xx ratio by service", [(f'sum by (service) (rate(http_requests_total{{{api},status=~"5.."}}[$__rate_interval])) / sum by (service) (rate(http_requests_total{{{api}}}[$__rate_interval]))', "{{service}}")], "percentunit", 12, 0),
        panel(3, "p99 latency by service", [(f'histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket{{{api}}}[$__rate_interval])))', "{{service}}")], "s", 0, 8),
        panel(4, "Error budget remaining, every SLO", [('slo:period_error_budget_remaining:ratio', "{{sloth_service}} {{sloth_slo}}")], "percentunit", 12, 8),
        panel(5, "Consumer lag p99 by service and topic", [('histogram_quantile(0.99, sum by (le, service, topic) (rate(event_age_seconds_bucket{job="services"}[$__rate_interval])))', "{{service}} {{topic}}")], "s", 0, 16),
        panel(6, "Dead-lettered events", [('sum by (service, topic) (increase(events_handled_total{job="services",outcome="rejected"}[$__range]))', "{{service}} {{topic}}")], "short", 12, 16),
        panel(7, "Open circuit breakers", [('sum by (service, name) (dapr_resiliency_cb_state{status="open"} == 1)', "{{service}} {{name}}")], "short", 0, 24),
        panel(8, "Firing SLO alerts", [('sum by (alertname, severity) (ALERTS{alertstate="firing",sloth_slo!=""})', "{{alertname}} {{severity}}")], "short", 12, 24),
    ]


def console():
    """A self-contained console template (Debian's Prometheus ships no
    console libraries): Go template functions only (query, humanize...)."""
    def cell(expr, fmt):
        return (f'<td>{{{{ with query "{expr}" }}}}{{{{ . | first | value | {fmt} }}}}'
                f'{{{{ else }}}}-{{{{ end }}}}</td>')
    rows = []
    for s in SERVICES:
        api = API.format(s=s).replace('"', "'")
        rows.append(f"  <tr><th>{s}</th>\n    " + "\n    ".join([
            cell(f"sum(rate(http_requests_total{{{api}}}[5m]))", "humanize"),
            cell(f"sum(rate(http_requests_total{{{api},status=~'5..'}}[5m])) / sum(rate(http_requests_total{{{api}}}[5m]))", "humanizePercentage"),
            cell(f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{api}}}[5m])))", "humanizeDuration"),
            cell(f"min(slo:period_error_budget_remaining:ratio{{sloth_service='{s}'}})", "humanizePercentage"),
        ]) + "\n  </tr>")
    rows = "\n".join(rows)
    return f'''{{{{/* The platform at a glance, served by `make up`'s Prometheus at
   /consoles/platform.html. Generated by dashboards/generate.py. */}}}}
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>LisaSports platform</title>
<meta http-equiv="refresh" content="15">
<style>body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }} th {{ background: #f4f4f4; }}</style>
</head><body>
<h1>LisaSports platform</h1>
<p>Refreshes every 15 s. Grafana boards: dashboards/*.json. Traces: http://127.0.0.1:16686/api/traces?service=payments</p>
<table>
  <tr><th>service</th><th>requests/s (5 m)</th><th>5xx ratio</th><th>p99 latency</th><th>lowest error budget left (30 d)</th></tr>
{rows}
</table>
<h2>Every SLO</h2>
<table>
  <tr><th>service</th><th>SLO</th><th>objective</th><th>error ratio (1 h)</th><th>budget left (30 d)</th></tr>
{{{{ range query "slo:objective:ratio" | sortByLabel "sloth_id" }}}}
  <tr><td>{{{{ .Labels.sloth_service }}}}</td><td>{{{{ .Labels.sloth_slo }}}}</td><td>{{{{ .Value | humanizePercentage }}}}</td>
    <td>{{{{ with printf "slo:sli_error:ratio_rate1h{{sloth_id='%s'}}" .Labels.sloth_id | query }}}}{{{{ . | first | value | humanizePercentage }}}}{{{{ else }}}}-{{{{ end }}}}</td>
    <td>{{{{ with printf "slo:period_error_budget_remaining:ratio{{sloth_id='%s'}}" .Labels.sloth_id | query }}}}{{{{ . | first | value | humanizePercentage }}}}{{{{ else }}}}-{{{{ end }}}}</td></tr>
{{{{ end }}}}
</table>
<h2>Firing alerts</h2>
<ul>
{{{{ range query "ALERTS{{alertstate='firing'}}" }}}}<li>{{{{ .Labels.alertname }}}} ({{{{ .Labels.severity }}}}) {{{{ .Labels.sloth_service }}}} {{{{ .Labels.sloth_slo }}}}</li>
{{{{ else }}}}<li>none</li>{{{{ end }}}}
</ul>
<h2>Consumers</h2>
<table>
  <tr><th>service</th><th>topic</th><th>event age p99 (5 m)</th><th>dead-lettered (1 h)</th></tr>
{{{{ range query "histogram_quantile(0.99, sum by (le, service, topic) (rate(event_age_seconds_bucket{{job='services'}}[5m])))" | sortByLabel "service" }}}}
  <tr><td>{{{{ .Labels.service }}}}</td><td>{{{{ .Labels.topic }}}}</td><td>{{{{ .Value | humanizeDuration }}}}</td>
    <td>{{{{ with printf "sum(increase(events_handled_total{{job='services',service='%s',topic='%s',outcome='rejected'}}[1h]))" .Labels.service .Labels.topic | query }}}}{{{{ . | first | value | humanize }}}}{{{{ else }}}}0{{{{ end }}}}</td></tr>
{{{{ end }}}}
</table>
<h2>Sidecar circuit breakers not closed</h2>
<ul>
{{{{ range query "dapr_resiliency_cb_state{{status!='closed'}} == 1" }}}}<li>{{{{ .Labels.app_id }}}} {{{{ .Labels.target }}}}: {{{{ .Labels.status }}}}</li>
{{{{ else }}}}<li>none</li>{{{{ end }}}}
</ul>
</body></html>
'''


def main():
    for s in SERVICES:
        with open(os.path.join(HERE, f"{s}.json"), "w") as f:
            json.dump(dashboard(f"lisasports-{s}", f"LisaSports / {s}", service_panels(s)), f, indent=2)
            f.write("\n")
    with open(os.path.join(HERE, "overview.json"), "w") as f:
        json.dump(dashboard("lisasports-overview", "LisaSports / platform overview", overview_panels()), f, indent=2)
        f.write("\n")
    with open(os.path.join(HERE, "consoles", "platform.html"), "w") as f:
        f.write(console())


if __name__ == "__main__":
    main()
