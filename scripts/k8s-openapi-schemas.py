#!/usr/bin/env python3
"""Writes kubeconform JSON schemas from an API server's OpenAPI v2 document.

Usage: k8s-openapi-schemas.py <openapi-v2.json> <out-dir>

kubeconform normally downloads its schemas from GitHub, which is not
reachable here; the API server started by scripts/k8s-check.sh serves the same
definitions (built-in kinds and every installed CRD), so each kind's schema is
written as <kind>-<group>-<version>.json (lower-case kind; the group is "v1"
for the core API, as kubeconform names it) with the definitions it references. Integer-or-string fields accept
both, as the API server does; objects without `additionalProperties` are
closed, so kubeconform -strict reports unknown fields.
"""

import json
import os
import sys


def transform(node):
    if isinstance(node, list):
        return [transform(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return {}
    out = {k: transform(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref[len("#/definitions/"):])
        for v in node.values():
            refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def closure(name, defs):
    seen, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n in seen or n not in defs:
            continue
        seen.add(n)
        found = set()
        refs(defs[n], found)
        todo.extend(found - seen)
    return seen


def main():
    spec = json.load(open(sys.argv[1]))
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    defs = {k: transform(v) for k, v in spec["definitions"].items()}
    written = 0
    for name, d in spec["definitions"].items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            # apiVersion and kind are open strings in the definitions.
            schema = dict(defs[name])
            schema["definitions"] = {n: defs[n] for n in closure(name, defs)}
            # kubeconform's {{ .Group }} is the apiVersion's first part:
            # "apps" for apps/v1, "v1" for the core API's v1.
            fname = "%s-%s-%s.json" % (gvk["kind"].lower(), gvk.get("group") or gvk["version"], gvk["version"])
            with open(os.path.join(out_dir, fname), "w") as f:
                json.dump(schema, f)
            written += 1
    if written == 0:
        sys.exit("no kinds found in the OpenAPI document")
    print("k8s-openapi-schemas: %d kinds" % written, file=sys.stderr)


if __name__ == "__main__":
    main()
