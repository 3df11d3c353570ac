"""`make catalog`: the service catalogue as a static site.

Reads the Backstage entities under catalog/ and the files they name
(OpenAPI documents, AsyncAPI, event schemas, Dapr components, slo/*.yaml,
READMEs and docs) and writes, deterministically (same input → same bytes):

  index.html              every component (services, gateway, sandboxes, …), API, topic, resource
  components/<name>.html  one page per component: its APIs (operations, parameters,
                          responses), topics published/consumed with their schemas,
                          components used, SLOs, owner, runbook links
  apis/<name>.html        one page per API (OpenAPI rendered, or the topic's events)
  resources.html, groups.html
  dependencies.svg        the platform's dependency picture (Graphviz dot, from the same entities)
  src/<path>.html         every repository file a page links to, readable in the browser

Usage: generate.py [--out DIR] [--dot PATH-TO-dot]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import catalog_model as cm  # noqa: E402

HERE = Path(__file__).resolve().parent
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


# --- links --------------------------------------------------------------------


class Site:
    """Collects the repository files that pages link to, so each gets a page."""

    def __init__(self) -> None:
        self.sources: set[str] = set()

    def repo_link(self, entity_file: Path, url: str) -> dict:
        """A link written relative to an entity file → {href, label} (root-relative)."""
        if re.match(r"^[a-z]+://", url):
            return {"href": url, "external": True, "label": url}
        target, _, fragment = url.partition("#")
        path = (entity_file.parent / target).resolve()
        return self.path_link(path, fragment)

    def path_link(self, path: Path, fragment: str = "") -> dict:
        rel = path.relative_to(cm.REPO).as_posix()
        if path.is_dir():
            readme = path / "README.md"
            if not readme.is_file():
                return {"href": None, "label": rel + "/"}
            path, rel = readme, rel + "/README.md"
        self.sources.add(rel)
        href = f"src/{rel}.html" + (f"#{fragment}" if fragment else "")
        return {"href": href, "label": rel + (f"#{fragment}" if fragment else "")}


def slug(text: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces → '-'."""
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_blocks(text: str) -> list[dict]:
    """Headings (with GitHub's anchors) and the text between them, verbatim."""
    blocks: list[dict] = []
    seen: dict[str, int] = {}
    buffer: list[str] = []
    in_code = False

    def flush() -> None:
        if any(line.strip() for line in buffer):
            blocks.append({"kind": "text", "text": "\n".join(buffer).strip("\n")})
        buffer.clear()

    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            flush()
            anchor = slug(match.group(2))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            blocks.append(
                {
                    "kind": "heading",
                    "level": len(match.group(1)),
                    "text": match.group(2),
                    "id": anchor if count == 0 else f"{anchor}-{count}",
                }
            )
        else:
            buffer.append(line)
    flush()
    return blocks


# --- OpenAPI ------------------------------------------------------------------


class OpenApi:
    def __init__(self, doc: dict, schema_href: str) -> None:
        self.doc = doc
        self.schema_href = schema_href  # where #schema-<Name> anchors live

    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return node
            target = self.doc
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node, seen = target, seen + 1
        return node

    def schema_summary(self, schema) -> list[dict]:
        """A schema as short pieces of text, named schemas linked."""
        if not isinstance(schema, dict):
            return [{"text": "any"}]
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            return [{"text": name, "href": f"{self.schema_href}#schema-{name}"}]
        for combinator in ("oneOf", "anyOf", "allOf"):
            if combinator in schema:
                out: list[dict] = [{"text": f"{combinator}("}]
                for i, part in enumerate(schema[combinator]):
                    if i:
                        out.append({"text": " | " if combinator != "allOf" else " & "})
                    out.extend(self.schema_summary(part))
                out.append({"text": ")"})
                return out
        kind = schema.get("type", "object" if "properties" in schema else "any")
        if isinstance(kind, list):
            kind = " | ".join(str(k) for k in kind)
        if kind == "array":
            return [{"text": "array of "}] + self.schema_summary(schema.get("items"))
        facts = []
        for key in ("format", "pattern", "minimum", "maximum", "minLength", "maxLength", "default"):
            if key in schema:
                facts.append(f"{key} {schema[key]}")
        if "enum" in schema:
            facts.append("one of " + ", ".join(str(v) for v in schema["enum"]))
        if kind == "object" and schema.get("properties"):
            required = set(schema.get("required") or [])
            names = [p + ("*" if p in required else "") for p in schema["properties"]]
            facts.append("{" + ", ".join(names) + "}")
        return [{"text": str(kind) + (f" ({'; '.join(facts)})" if facts else "")}]

    def content(self, content: dict | None) -> list[dict]:
        return [
            {"media_type": media, "schema": self.schema_summary((body or {}).get("schema"))}
            for media, body in (content or {}).items()
        ]

    def operations(self) -> list[dict]:
        ops = []
        for path, item in (self.doc.get("paths") or {}).items():
            item = self.resolve(item) or {}
            shared = item.get("parameters") or []
            for method in METHODS:
                if method not in item:
                    continue
                op = item[method] or {}
                params = []
                for raw in list(shared) + list(op.get("parameters") or []):
                    p = self.resolve(raw) or {}
                    params.append(
                        {
                            "name": p.get("name", "?"),
                            "in": p.get("in", "?"),
                            "required": bool(p.get("required")),
                            "schema": self.schema_summary(p.get("schema")),
                            "description": p.get("description", ""),
                        }
                    )
                body = self.resolve(op.get("requestBody")) if op.get("requestBody") else None
                responses = []
                for code, raw in sorted((op.get("responses") or {}).items(), key=lambda kv: str(kv[0])):
                    r = self.resolve(raw) or {}
                    responses.append(
                        {
                            "code": str(code),
                            "description": r.get("description", ""),
                            "content": self.content(r.get("content")),
                        }
                    )
                security = op.get("security", self.doc.get("security"))
                ops.append(
                    {
                        "id": f"op-{method}-{slug(path.replace('/', ' ').replace('{', '').replace('}', ''))}",
                        "method": method.upper(),
                        "path": path,
                        "summary": op.get("summary", ""),
                        "description": op.get("description", ""),
                        "params": params,
                        "body": (
                            {"required": bool(body.get("required")), "content": self.content(body.get("content"))}
                            if body
                            else None
                        ),
                        "responses": responses,
                        "security": (
                            "none (public)"
                            if security == []
                            else ", ".join(
                                f"{name}" + (f" [{' '.join(scopes)}]" if scopes else "")
                                for req in (security or [])
                                for name, scopes in req.items()
                            )
                        ),
                    }
                )
        return ops

    def schemas(self) -> list[dict]:
        named = ((self.doc.get("components") or {}).get("schemas")) or {}
        return [
            {"name": name, "yaml": yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=100)}
            for name, schema in named.items()
        ]


# --- views --------------------------------------------------------------------


def event_view(site: Site, event_type: str, schemas: dict[str, Path]) -> dict:
    path = schemas.get(event_type)
    if not path:
        return {"type": event_type, "missing": True}
    schema = cm.load_json(path)
    required = set(schema.get("required") or [])
    fields = [
        {
            "name": name,
            "required": name in required,
            "type": OpenApi({}, "").schema_summary(prop),
            "description": (prop or {}).get("description", ""),
        }
        for name, prop in (schema.get("properties") or {}).items()
    ]
    return {
        "type": event_type,
        "title": schema.get("title", event_type),
        "description": schema.get("description", ""),
        "fields": fields,
        "json": json.dumps(schema, indent=2, ensure_ascii=False),
        "link": site.path_link(path),
    }


def api_view(site: Site, catalog: cm.Catalog, api, schemas: dict[str, Path], schema_href: str) -> dict:
    view = {
        "name": api.name,
        "title": api.metadata.get("title", api.name),
        "description": api.metadata.get("description", ""),
        "type": api.type,
        "lifecycle": api.spec.get("lifecycle", ""),
        "owner": api.spec.get("owner", ""),
        "providers": [c.name for c in catalog.providers(api)],
        "consumers": [c.name for c in catalog.consumers(api)],
        "definition": site.path_link(api.definition_file) if api.definition_file else None,
    }
    if api.type == "openapi" and api.definition_file:
        doc = cm.load_yaml(api.definition_file)
        oa = OpenApi(doc, schema_href)
        info = doc.get("info") or {}
        view.update(
            version=info.get("version", ""),
            api_description=info.get("description", ""),
            servers=[s.get("url", "") for s in doc.get("servers") or []],
            operations=oa.operations(),
            schemas=oa.schemas(),
        )
    elif api.type == "asyncapi":
        topic = api.annotation("topic") or ""
        view.update(
            topic=topic,
            pubsub=api.annotation("pubsub") or "",
            channel=api.annotation("asyncapi-channel") or "",
            events=[event_view(site, t, schemas) for t in api.event_types],
        )
    return view


def slo_view(site: Site, name: str) -> dict | None:
    path = cm.slo_files().get(name)
    if not path:
        return None
    doc = cm.load_yaml(path)
    return {
        "link": site.path_link(path),
        "guide": site.path_link(cm.REPO / "docs" / "slo.md"),
        "owner": (doc.get("labels") or {}).get("owner", ""),
        "objectives": [
            {
                "name": s.get("name", ""),
                "objective": s.get("objective", ""),
                "description": s.get("description", ""),
                "alert": (s.get("alerting") or {}).get("name", ""),
            }
            for s in doc.get("slos") or []
        ],
    }


def resource_view(site: Site, catalog: cm.Catalog, res) -> dict:
    source = res.annotation("source")
    return {
        "name": res.name,
        "title": res.metadata.get("title", res.name),
        "type": res.type,
        "dapr_type": res.annotation("dapr-type") or "",
        "description": res.metadata.get("description", ""),
        "source": site.repo_link(res.file, source) if source else None,
        "depends_on": [{"kind": e.kind, "name": e.name} for e in catalog.refs(res, "dependsOn")],
        "used_by": [{"kind": e.kind, "name": e.name} for e in catalog.dependents(res)],
        "docs": [dict(site.repo_link(res.file, url), title=title) for url, title in res.docs],
        # A topic's publishers and subscribers are on its API's page.
        "topic_api": next(
            (a.name for a in catalog.of_kind("api") if res.type == "topic" and a.annotation("topic") == res.annotation("topic")),
            None,
        ),
    }


def component_view(site: Site, catalog: cm.Catalog, comp, schemas: dict[str, Path]) -> dict:
    provided = catalog.refs(comp, "providesApis")
    consumed = catalog.refs(comp, "consumesApis")
    links = [
        dict(site.repo_link(comp.file, url), title=title) for url, title in comp.docs
    ]
    source = comp.annotation("source")
    runbook = comp.annotation("runbook")
    return {
        "name": comp.name,
        "title": comp.metadata.get("title", comp.name),
        "description": comp.metadata.get("description", ""),
        "type": comp.type,
        "lifecycle": comp.spec.get("lifecycle", ""),
        "owner": comp.spec.get("owner", ""),
        "system": comp.spec.get("system", ""),
        "tags": comp.metadata.get("tags") or [],
        "source": site.repo_link(comp.file, source) if source else None,
        "runbook": site.repo_link(comp.file, runbook) if runbook else None,
        "links": links,
        "openapis": [
            api_view(site, catalog, a, schemas, f"../apis/{a.name}.html") for a in provided if a.type == "openapi"
        ],
        "published": [
            api_view(site, catalog, a, schemas, "") for a in provided if a.type == "asyncapi"
        ],
        "consumed_apis": [
            {"name": a.name, "providers": [c.name for c in catalog.providers(a)]} for a in consumed if a.type != "asyncapi"
        ],
        "consumed_topics": [api_view(site, catalog, a, schemas, "") for a in consumed if a.type == "asyncapi"],
        "uses": [
            dict(resource_view(site, catalog, e), kind=e.kind) if e.kind == "Resource" else
            {"kind": e.kind, "name": e.name, "type": e.type, "description": e.metadata.get("description", "")}
            for e in catalog.refs(comp, "dependsOn")
        ],
        "used_by": [{"kind": e.kind, "name": e.name} for e in catalog.dependents(comp)],
        "slo": slo_view(site, comp.name),
    }


# --- the dependency picture ---------------------------------------------------

NODE_STYLE = {
    "service": 'shape=box style="rounded,filled" fillcolor="#cfe2ff"',
    "gateway": 'shape=box style="rounded,filled" fillcolor="#ffe5b4"',
    "sandbox": 'shape=box style="rounded,filled,dashed" fillcolor="#eeeeee"',
    "library": 'shape=component style=filled fillcolor="#eeeeee"',
    "dapr-pluggable-component": 'shape=box style="rounded,filled" fillcolor="#d1e7dd"',
    "dapr-component": 'shape=ellipse style=filled fillcolor="#d1e7dd"',
    "database": 'shape=cylinder style=filled fillcolor="#f8d7da"',
    "topic": 'shape=cds style=filled fillcolor="#fff3cd"',
    "dapr-control-plane": 'shape=hexagon style=filled fillcolor="#e2d9f3"',
}


# Boxes of the picture, in the order they are drawn.
CLUSTERS = [
    ("apps (services, gateway, binding)", {"service", "gateway", "dapr-pluggable-component"}),
    ("sandboxes (local stand-ins for providers)", {"sandbox", "library"}),
    ("topics", {"topic"}),
    ("Dapr components", {"dapr-component", "dapr-control-plane"}),
    ("stores", {"database"}),
]


def node_id(entity) -> str:
    return f"{entity.kind.lower()}:{entity.name}"


def dependency_dot(catalog: cm.Catalog) -> str:
    """Components, resources and topics as nodes; calls, uses, publishes and
    subscribes as edges; all from the entities, in a fixed order."""
    lines = [
        "digraph platform {",
        '  graph [rankdir=LR fontname="DejaVu Sans" fontsize=11 nodesep=0.25 ranksep=0.9];',
        '  node [fontname="DejaVu Sans" fontsize=10];',
        '  edge [fontname="DejaVu Sans" fontsize=8 color="#555555"];',
    ]
    nodes = catalog.of_kind("component") + catalog.of_kind("resource")
    for title, types in CLUSTERS:
        members = [e for e in nodes if e.type in types]
        if not members:
            continue
        lines.append(f'  subgraph "cluster_{slug(title)}" {{')
        lines.append(f'    label="{title}"; style="rounded,dashed"; color="#999999"; fontcolor="#555555";')
        for e in members:
            style = NODE_STYLE.get(e.type, "shape=box")
            lines.append(f'    "{node_id(e)}" [label="{e.name}" tooltip="{e.type}" {style} URL="{page_of(e)}" target="_top"];')
        lines.append("  }")
    clustered = {t for _, types in CLUSTERS for t in types}
    for e in nodes:
        if e.type not in clustered:
            style = NODE_STYLE.get(e.type, "shape=box")
            lines.append(f'  "{node_id(e)}" [label="{e.name}" tooltip="{e.type}" {style} URL="{page_of(e)}" target="_top"];')
    edges = set()
    for c in catalog.of_kind("component"):
        for api in catalog.refs(c, "consumesApis"):
            if api.type == "asyncapi":
                topic = catalog.get(f"resource:default/topic-{api.annotation('topic')}".lower())
                if topic:
                    edges.add((node_id(topic), node_id(c), "subscribes", "dashed"))
                continue
            for provider in catalog.providers(api):
                edges.add((node_id(c), node_id(provider), "calls", "solid"))
        for api in catalog.refs(c, "providesApis"):
            if api.type == "asyncapi":
                topic = catalog.get(f"resource:default/topic-{api.annotation('topic')}".lower())
                if topic:
                    edges.add((node_id(c), node_id(topic), "publishes", "dashed"))
    for e in nodes:
        for dep in catalog.refs(e, "dependsOn"):
            edges.add((node_id(e), node_id(dep), "uses", "solid"))
    for src, dst, label, style in sorted(edges):
        color = {"calls": "#0b5ed7", "publishes": "#b58100", "subscribes": "#b58100"}.get(label, "#777777")
        lines.append(f'  "{src}" -> "{dst}" [style={style} color="{color}" tooltip="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def page_path(kind: str, name: str) -> str:
    """The page (and anchor) that shows an entity, relative to the site root."""
    if kind == "Component":
        return f"components/{name}.html"
    if kind == "API":
        return f"apis/{name}.html"
    if kind == "Resource":
        return f"resources.html#resource-{name}"
    return f"groups.html#{kind.lower()}-{name}"


def page_of(entity) -> str:
    return page_path(entity.kind, entity.name)


# --- writing ------------------------------------------------------------------


def build(out: Path, dot: str = "dot") -> list[Path]:
    catalog = cm.load()
    schemas = cm.event_schemas()
    site = Site()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["page_of"] = page_of
    env.globals["page_of_entity"] = lambda d: page_path(d["kind"], d["name"])

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    def render(template: str, page: str, **ctx) -> None:
        root = "../" * page.count("/")
        write(page, env.get_template(template).render(root=root, **ctx))

    components = catalog.of_kind("component")
    apis = catalog.of_kind("api")
    resources = catalog.of_kind("resource")
    groups = catalog.of_kind("group")
    systems = catalog.of_kind("system")

    component_views = [component_view(site, catalog, c, schemas) for c in components]
    for view in component_views:
        render("component.html.j2", f"components/{view['name']}.html", c=view)
    for api in apis:
        render("api.html.j2", f"apis/{api.name}.html", a=api_view(site, catalog, api, schemas, ""))
    resource_views = [resource_view(site, catalog, r) for r in resources]
    render("resources.html.j2", "resources.html", resources=resource_views)
    system_views = [
        {
            "name": s.name,
            "title": s.metadata.get("title", s.name),
            "description": s.metadata.get("description", ""),
            "owner": s.spec.get("owner", ""),
            "links": [
                dict(site.repo_link(s.file, url), title=title) for url, title in s.docs
            ],
        }
        for s in systems
    ]
    group_views = [
        {
            "name": g.name,
            "title": g.metadata.get("title", g.name),
            "description": g.metadata.get("description", ""),
            "type": g.type,
            "parent": g.spec.get("parent", ""),
            "children": g.spec.get("children") or [],
            "owns": sorted(
                page_of(e) + "|" + e.kind + "|" + e.name
                for e in catalog.entities.values()
                if e.spec.get("owner") and cm.parse_ref(str(e.spec["owner"]), "owner") == g.ref
            ),
        }
        for g in groups
    ]
    render("groups.html.j2", "groups.html", groups=group_views, systems=system_views)

    dot_text = dependency_dot(catalog)
    write("dependencies.dot", dot_text)
    svg = subprocess.run([dot, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=True).stdout
    write("dependencies.svg", svg)

    by_type: dict[str, list[dict]] = {}
    for view in component_views:
        by_type.setdefault(view["type"], []).append(view)
    order = ["service", "gateway", "dapr-pluggable-component", "sandbox", "library"]
    sections = [(t, by_type[t]) for t in order if t in by_type] + [
        (t, v) for t, v in sorted(by_type.items()) if t not in order
    ]
    render(
        "index.html.j2",
        "index.html",
        sections=sections,
        apis=[api_view(site, catalog, a, schemas, "") for a in apis],
        resources=resource_views,
        systems=system_views,
    )

    # Every repository file a page linked to, as a readable page.
    for rel in sorted(site.sources):
        path = cm.REPO / rel
        text = path.read_text(encoding="utf-8")
        blocks = markdown_blocks(text) if rel.endswith(".md") else [{"kind": "text", "text": text}]
        render("source.html.j2", f"src/{rel}.html", rel=rel, blocks=blocks)

    shutil.copyfile(HERE / "templates" / "style.css", out / "style.css")
    written.append(out / "style.css")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=cm.REPO / ".run" / "catalog")
    parser.add_argument("--dot", default="dot")
    args = parser.parse_args()
    written = build(args.out.resolve(), args.dot)
    pages = sum(1 for p in written if p.suffix == ".html")
    print(f"catalog: {pages} pages, {len(written)} files in {args.out} (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
