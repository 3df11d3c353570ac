"""The service catalogue as data: the Backstage entities under catalog/ and
the facts of the repository they describe (services/, components/,
dapr-config/, contracts/, slo/).

Both the site generator (generate.py) and the checks (catalog/tests/) read
the repository through this module, so the site shows exactly what the
checks proved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CATALOG_ROOT = REPO / "catalog" / "catalog-info.yaml"

# Backstage's default kind for a reference in each field
# (https://backstage.io/docs/features/software-catalog/descriptor-format).
DEFAULT_KIND = {
    "owner": "group",
    "system": "system",
    "providesApis": "api",
    "consumesApis": "api",
    "dependsOn": None,  # the kind is required there
    "parent": "group",
    "children": "group",
    "subcomponentOf": "component",
}
# Backstage's rule for metadata.name: 1-63 characters, [a-zA-Z0-9] runs
# separated by one of - _ .
NAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$")
ANNOTATION = "lisasports.example/"


class CatalogError(Exception):
    """The catalogue cannot be read (a missing target, a malformed entity)."""


@dataclass(frozen=True)
class Entity:
    kind: str
    name: str
    namespace: str
    data: dict
    file: Path

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}:{self.namespace}/{self.name}".lower()

    @property
    def spec(self) -> dict:
        return self.data.get("spec") or {}

    @property
    def metadata(self) -> dict:
        return self.data.get("metadata") or {}

    @property
    def type(self) -> str:
        return str(self.spec.get("type", ""))

    def annotation(self, key: str, default: str | None = None) -> str | None:
        return (self.metadata.get("annotations") or {}).get(ANNOTATION + key, default)

    def path(self, relative: str) -> Path:
        """A file the entity names (relative to its own file), without #fragment."""
        return (self.file.parent / relative.split("#", 1)[0]).resolve()

    @property
    def definition_file(self) -> Path | None:
        definition = self.spec.get("definition")
        if isinstance(definition, dict) and "$text" in definition:
            return self.path(definition["$text"])
        return None

    @property
    def docs(self) -> list[tuple[str, str]]:
        """Runbooks and docs: `lisasports.example/docs`, a line each of
        `<path relative to the entity file>[#anchor] <title>`. (Backstage's
        `metadata.links` needs absolute URLs, which a repository without a
        web address cannot give.)"""
        out = []
        for line in (self.annotation("docs") or "").splitlines():
            if line.strip():
                url, _, title = line.strip().partition(" ")
                out.append((url, title.strip() or url))
        return out

    @property
    def event_types(self) -> list[str]:
        return (self.annotation("event-types") or "").split()


def parse_ref(text: str, field_name: str) -> str:
    """`[kind:][namespace/]name` → `kind:namespace/name` (lower case)."""
    kind, rest = (text.split(":", 1) if ":" in text else (DEFAULT_KIND.get(field_name), text))
    if not kind:
        raise CatalogError(f"reference {text!r} in {field_name} needs a kind")
    namespace, name = rest.split("/", 1) if "/" in rest else ("default", rest)
    return f"{kind}:{namespace}/{name}".lower()


@dataclass
class Catalog:
    entities: dict[str, Entity] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Entity]:
        return sorted(
            (e for e in self.entities.values() if e.kind.lower() == kind.lower()),
            key=lambda e: e.name,
        )

    def get(self, ref: str) -> Entity | None:
        return self.entities.get(ref)

    def references(self, entity: Entity) -> list[tuple[str, str]]:
        """Every (field, normalised reference) an entity makes."""
        out = []
        spec = entity.spec
        for name in ("owner", "system", "parent", "subcomponentOf"):
            if spec.get(name):
                out.append((name, parse_ref(str(spec[name]), name)))
        for name in ("providesApis", "consumesApis", "dependsOn", "children"):
            for item in spec.get(name) or []:
                out.append((name, parse_ref(str(item), name)))
        return out

    def refs(self, entity: Entity, field_name: str) -> list[Entity]:
        found = []
        for name, ref in self.references(entity):
            if name == field_name and ref in self.entities:
                found.append(self.entities[ref])
        return sorted(found, key=lambda e: (e.kind, e.name))

    def providers(self, api: Entity) -> list[Entity]:
        return [c for c in self.of_kind("component") if api in self.refs(c, "providesApis")]

    def consumers(self, api: Entity) -> list[Entity]:
        return [c for c in self.of_kind("component") if api in self.refs(c, "consumesApis")]

    def dependents(self, target: Entity) -> list[Entity]:
        out = [
            e
            for e in self.entities.values()
            if target in self.refs(e, "dependsOn")
        ]
        return sorted(out, key=lambda e: (e.kind, e.name))


def load(root: Path = CATALOG_ROOT) -> Catalog:
    """Reads the Location at `root` and every file it targets, recursively."""
    catalog = Catalog()
    pending = [root.resolve()]
    seen: set[Path] = set()
    while pending:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            raise CatalogError(f"catalogue file {path} is missing")
        catalog.files.append(path)
        with path.open(encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
                raise CatalogError(f"{path}: a document without kind/metadata")
            meta = doc["metadata"]
            entity = Entity(
                kind=str(doc["kind"]),
                name=str(meta.get("name", "")),
                namespace=str(meta.get("namespace", "default")),
                data=doc,
                file=path,
            )
            if entity.kind == "Location":
                for target in (doc.get("spec") or {}).get("targets") or []:
                    pending.append((path.parent / target).resolve())
            if entity.ref in catalog.entities:
                raise CatalogError(f"{path}: {entity.ref} defined twice")
            catalog.entities[entity.ref] = entity
    return catalog


# --- what the repository holds -------------------------------------------------


def _yaml_docs(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]


def services() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "services").glob("*/Cargo.toml"))


def sandboxes() -> list[Path]:
    return sorted(p for p in (REPO / "sandboxes").iterdir() if p.is_dir())


def pluggable_components() -> list[Path]:
    return sorted(p for p in (REPO / "pluggable-components").iterdir() if p.is_dir())


@dataclass(frozen=True)
class DaprComponent:
    name: str
    kind: str  # Component or HTTPEndpoint
    type: str  # spec.type, or "HTTPEndpoint"
    file: Path
    metadata: dict
    scopes: tuple[str, ...]


def dapr_components() -> list[DaprComponent]:
    """Every Component and HTTPEndpoint in components/ (all overlays)."""
    found = []
    for path in sorted((REPO / "components").rglob("*.yaml")):
        for doc in _yaml_docs(path):
            if doc.get("kind") not in ("Component", "HTTPEndpoint"):
                continue
            spec = doc.get("spec") or {}
            meta = {m["name"]: m.get("value") for m in spec.get("metadata") or [] if "name" in m}
            found.append(
                DaprComponent(
                    name=doc["metadata"]["name"],
                    kind=doc["kind"],
                    type=spec.get("type", doc["kind"]),
                    file=path,
                    metadata=meta,
                    scopes=tuple(doc.get("scopes") or ()),
                )
            )
    return found


@dataclass(frozen=True)
class Subscription:
    name: str
    pubsub: str
    topic: str
    dead_letter_topic: str | None
    scopes: tuple[str, ...]
    file: Path


def subscriptions() -> list[Subscription]:
    found = []
    for path in sorted((REPO / "dapr-config" / "subscriptions").glob("*.yaml")):
        for doc in _yaml_docs(path):
            if doc.get("kind") != "Subscription":
                continue
            spec = doc.get("spec") or {}
            found.append(
                Subscription(
                    name=doc["metadata"]["name"],
                    pubsub=spec["pubsubname"],
                    topic=spec["topic"],
                    dead_letter_topic=spec.get("deadLetterTopic"),
                    scopes=tuple(doc.get("scopes") or ()),
                    file=path,
                )
            )
    return found


def parse_scopes(value: str | None) -> dict[str, set[str]]:
    """Dapr's `app=topic,topic;app2=topic` → {app: {topic}}."""
    out: dict[str, set[str]] = {}
    for part in (value or "").split(";"):
        if "=" in part:
            app, topics = part.split("=", 1)
            out.setdefault(app.strip(), set()).update(t.strip() for t in topics.split(",") if t.strip())
    return out


def asyncapi() -> dict:
    with (REPO / "contracts" / "asyncapi.yaml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def asyncapi_channel_types() -> dict[str, set[str]]:
    """Channel address → the CloudEvent types of its messages."""
    doc = asyncapi()
    messages = (doc.get("components") or {}).get("messages") or {}
    out: dict[str, set[str]] = {}
    for channel in (doc.get("channels") or {}).values():
        types = out.setdefault(channel["address"], set())
        for message in (channel.get("messages") or {}).values():
            ref = message.get("$ref", "")
            target = messages.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/messages/") else message
            if target and target.get("name"):
                types.add(target["name"])
    return out


def topics() -> set[str]:
    """Every topic the repository names: pub/sub components' allowedTopics and
    scopes, Subscriptions (and their dead-letter topics), AsyncAPI channels."""
    found: set[str] = set()
    for component in dapr_components():
        if component.type.startswith("pubsub."):
            for key in ("allowedTopics", "protectedTopics"):
                found.update(t.strip() for t in (component.metadata.get(key) or "").split(",") if t.strip())
            for key in ("publishingScopes", "subscriptionScopes"):
                for names in parse_scopes(component.metadata.get(key)).values():
                    found.update(names)
    for sub in subscriptions():
        found.add(sub.topic)
        if sub.dead_letter_topic:
            found.add(sub.dead_letter_topic)
    found.update(asyncapi_channel_types())
    return found


# A CloudEvent type is `<service>.<aggregate>.<event>`; other schemas in
# contracts/events/ (say, the envelope's) describe no event of their own.
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z_]*(?:\.[a-z][a-z_]*){2,}$")


def event_schemas() -> dict[str, Path]:
    """CloudEvent type → its JSON Schema file (contracts/events/<type>.schema.json)."""
    folder = REPO / "contracts" / "events"
    found = {p.name.removesuffix(".schema.json"): p for p in sorted(folder.glob("*.schema.json"))}
    return {name: path for name, path in found.items() if EVENT_TYPE_RE.match(name)}


def load_json(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def openapi_documents() -> list[Path]:
    return sorted((REPO / "contracts" / "openapi").glob("*.yaml"))


def access_control_callers() -> dict[str, set[str]]:
    """Callee app id → the app ids its Dapr Configuration lets invoke it
    (dapr-config/local/<app>.yaml accessControl policies)."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO / "dapr-config" / "local").glob("*.yaml")):
        for doc in _yaml_docs(path):
            if doc.get("kind") != "Configuration":
                continue
            policies = ((doc.get("spec") or {}).get("accessControl") or {}).get("policies") or []
            if policies:
                out[doc["metadata"]["name"]] = {p["appId"] for p in policies}
    return out


def slo_files() -> dict[str, Path]:
    """Service name → slo/<service>.yaml."""
    return {p.stem: p for p in sorted((REPO / "slo").glob("*.yaml"))}


def load_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)
