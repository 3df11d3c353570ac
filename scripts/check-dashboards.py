#!/usr/bin/env python3
"""Checks dashboards/*.json (run by `make slo-check`, part of `make test`):

* each file is a Grafana dashboard as Grafana loads it: a JSON object with
  uid, title, schemaVersion, panels; every panel has id, type, title,
  gridPos {x,y,w,h} and at least one target with refId and expr; panel ids
  and target refIds are unique; no two panels overlap on the grid;
* every panel's PromQL parses: the expressions go through `promtool check
  rules` as recording rules (Prometheus' own parser), after Grafana's
  interval variables are given a value ($__rate_interval -> 1m ...).

Exits non-zero with what is wrong."""
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def problems_of(path, exprs):
    errors = []
    try:
        with open(path) as f:
            board = json.load(f)
    except ValueError as e:
        return [f"{path}: not JSON: {e}"]
    for key in ("uid", "title", "schemaVersion", "panels"):
        if key not in board:
            errors.append(f"{path}: no {key}")
    panels = board.get("panels", [])
    if not panels:
        errors.append(f"{path}: no panels")
    ids, cells = set(), []
    for p in panels:
        where = f"{path}: panel {p.get('id')} {p.get('title')!r}"
        for key in ("id", "type", "title", "gridPos", "targets"):
            if key not in p:
                errors.append(f"{where}: no {key}")
        if p.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g.get("x", 0) + g.get("w", 0) > 24:
            errors.append(f"{where}: gridPos must have integer x,y,w,h within 24 columns")
        else:
            for (ox, oy, ow, oh, oid) in cells:
                if g["x"] < ox + ow and ox < g["x"] + g["w"] and g["y"] < oy + oh and oy < g["y"] + g["h"]:
                    errors.append(f"{where}: overlaps panel {oid}")
            cells.append((g["x"], g["y"], g["w"], g["h"], p.get("id")))
        refs = set()
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no targets")
        for t in targets:
            if not t.get("expr"):
                errors.append(f"{where}: target without expr")
                continue
            if t.get("refId") in refs:
                errors.append(f"{where}: duplicate refId {t.get('refId')}")
            refs.add(t.get("refId"))
            expr = t["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            exprs.append((where, expr))
    return errors


def main():
    boards = sorted(glob.glob(os.path.join(HERE, "dashboards", "*.json")))
    if not boards:
        print("no dashboards/*.json", file=sys.stderr)
        return 1
    exprs, errors = [], []
    for path in boards:
        errors += problems_of(os.path.relpath(path, HERE), exprs)
    # All expressions in one rule file; if that fails, one file per
    # expression so that promtool's error names the panel.
    with tempfile.TemporaryDirectory() as tmp:
        def check(name, batch):
            rule = os.path.join(tmp, f"{name}.yaml")
            with open(rule, "w") as f:
                json.dump({"groups": [{"name": "dashboard", "rules": [
                    {"record": "dashboard:expr", "expr": e} for _, e in batch]}]}, f)
            return subprocess.run(["promtool", "check", "rules", rule], capture_output=True, text=True)
        if check("all", exprs).returncode != 0:
            for i, (where, expr) in enumerate(exprs):
                done = check(str(i), [(where, expr)])
                if done.returncode != 0:
                    errors.append(f"{where}: PromQL does not parse: {expr}\n{done.stdout}{done.stderr}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    print(f"dashboards: {len(boards)} boards, {len(exprs)} panel queries parse (promtool)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
