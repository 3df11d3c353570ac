"""catalog/ lists everything the repository runs and every reference in it
resolves; relations agree with the Dapr configuration they describe."""

import re

import pytest

import catalog_model as cm

REQUIRED_SPEC = {
    "Component": ("type", "lifecycle", "owner"),
    "API": ("type", "lifecycle", "owner", "definition"),
    "Resource": ("type", "owner"),
    "System": ("owner",),
    "Group": ("type", "children"),
    "Location": ("targets",),
}
FIELD_KINDS = {
    "owner": {"group", "user"},
    "system": {"system"},
    "providesApis": {"api"},
    "consumesApis": {"api"},
    "dependsOn": {"component", "resource"},
    "parent": {"group"},
    "children": {"group"},
}


def ref(kind: str, name: str) -> str:
    return f"{kind}:default/{name}".lower()


def test_every_entity_has_backstage_shape(catalog):
    assert len(catalog.entities) > 50, "the catalogue was not read whole"
    for e in catalog.entities.values():
        where = f"{e.file.name}: {e.kind} {e.name}"
        assert e.data.get("apiVersion") in ("backstage.io/v1alpha1", "backstage.io/v1beta1"), where
        assert e.kind in REQUIRED_SPEC, where
        assert len(e.name) <= 63 and cm.NAME_RE.match(e.name), f"{where}: not a valid Backstage name"
        for key in REQUIRED_SPEC[e.kind]:
            assert e.spec.get(key) not in (None, ""), f"{where}: spec.{key} missing"
        for tag in e.metadata.get("tags") or []:
            assert re.fullmatch(r"[a-z0-9:+#]+(-[a-z0-9:+#]+)*", tag), f"{where}: tag {tag!r}"
        for value in (e.metadata.get("annotations") or {}).values():
            assert isinstance(value, str), f"{where}: annotation values are strings"


def test_every_reference_resolves_to_the_right_kind(catalog):
    for e in catalog.entities.values():
        for field_name, target in catalog.references(e):
            assert target in catalog.entities, f"{e.kind} {e.name}: {field_name} {target} does not resolve"
            kind = target.split(":", 1)[0]
            assert kind in FIELD_KINDS[field_name], f"{e.kind} {e.name}: {field_name} -> {target}"


def test_every_file_an_entity_names_exists(catalog):
    for e in catalog.entities.values():
        assert not e.metadata.get("links"), f"{e.kind} {e.name}: links need absolute URLs; use lisasports.example/docs"
        named = [url for url, _ in e.docs]
        named += [v for k, v in (e.metadata.get("annotations") or {}).items()
                  if k.split("/")[-1] in ("source", "runbook", "slo")]
        if e.definition_file:
            assert e.definition_file.is_file(), f"API {e.name}: $text {e.definition_file} missing"
        elif e.kind == "API":
            pytest.fail(f"API {e.name}: definition is not a $text reference to a contract")
        for url in named:
            assert e.path(url).exists(), f"{e.kind} {e.name}: {url} does not exist"


def test_groups_agree_on_parents_and_children(catalog):
    for g in catalog.of_kind("group"):
        for child in g.spec.get("children") or []:
            assert catalog.get(ref("group", child)).spec.get("parent") == g.name
        if g.spec.get("parent"):
            assert g.name in catalog.get(ref("group", g.spec["parent"])).spec.get("children")


def test_every_service_sandbox_pluggable_component_and_the_gateway_is_a_component(catalog):
    by_source = {
        e.path(e.annotation("source")): e for e in catalog.of_kind("component") if e.annotation("source")
    }
    assert cm.services(), "no services found"
    for name in cm.services():
        c = catalog.get(ref("component", name))
        assert c is not None, f"services/{name} has no Component in catalog/"
        assert c.type == "service" and c.path(c.annotation("source")) == cm.REPO / "services" / name
    for folder in cm.sandboxes() + cm.pluggable_components() + [cm.REPO / "gateway"]:
        assert folder.resolve() in by_source, f"{folder.relative_to(cm.REPO)} has no Component in catalog/"
    assert catalog.get(ref("component", "gateway")).type == "gateway"


def test_every_openapi_document_is_one_api_provided_by_one_component(catalog):
    apis = {a.definition_file: a for a in catalog.of_kind("api") if a.type == "openapi"}
    for doc in cm.openapi_documents():
        assert doc in apis, f"{doc.relative_to(cm.REPO)} has no API entity"
        parsed = cm.load_yaml(doc)
        assert parsed.get("openapi", "").startswith("3.") and parsed.get("paths"), f"{doc.name} is no OpenAPI 3 document"
    for api in apis.values():
        assert len(catalog.providers(api)) == 1, f"{api.name} needs exactly one provider"


def test_every_dapr_component_is_a_resource_of_its_type(catalog):
    found = cm.dapr_components()
    assert {c.name for c in found} >= {"pubsub", "payments-state", "psp", "gateway-bearer"}
    for component in found:
        res = catalog.get(ref("resource", component.name))
        where = f"{component.file.relative_to(cm.REPO)}: {component.name}"
        assert res is not None, f"{where} has no Resource in catalog/"
        assert res.type == "dapr-component", where
        source = res.path(res.annotation("source"))
        declared = [c for c in found if c.name == component.name and c.file == source]
        assert declared, f"{where}: the Resource's source annotation does not define it"
        assert res.annotation("dapr-type") == declared[0].type, f"{where}: type differs"
    names = {c.name for c in found}
    for res in catalog.of_kind("resource"):
        if res.type == "dapr-component":
            assert res.name in names, f"Resource {res.name} is no component in components/ any more"


def test_every_topic_is_an_api_and_a_resource_on_its_pubsub(catalog):
    topics = cm.topics()
    assert {"payments", "payments.deadletter", "communication.sends"} <= topics
    pubsubs = {c.name for c in cm.dapr_components() if c.type.startswith("pubsub.")}
    listed = set()
    for api in catalog.of_kind("api"):
        if api.type != "asyncapi":
            continue
        topic = api.annotation("topic")
        listed.add(topic)
        assert api.name == f"events-{topic}"
        assert api.definition_file == cm.REPO / "contracts" / "asyncapi.yaml"
        res = catalog.get(ref("resource", f"topic-{topic}"))
        assert res is not None and res.type == "topic", f"topic {topic} has no Resource"
        assert api.annotation("pubsub") in pubsubs
        assert [d.name for d in catalog.refs(res, "dependsOn")] == [api.annotation("pubsub")]
    assert topics - listed == set(), f"topics missing from catalog/topics.yaml: {sorted(topics - listed)}"
    assert listed - topics == set(), f"topics the repository no longer has: {sorted(listed - topics)}"


def test_every_event_type_is_listed_on_the_topics_asyncapi_names(catalog):
    schemas = cm.event_schemas()
    by_topic = {a.annotation("topic"): set(a.event_types) for a in catalog.of_kind("api") if a.type == "asyncapi"}
    listed = set().union(*by_topic.values())
    assert set(schemas) - listed == set(), f"event types on no topic: {sorted(set(schemas) - listed)}"
    assert listed - set(schemas) == set(), f"listed types without a schema: {sorted(listed - set(schemas))}"
    for address, types in cm.asyncapi_channel_types().items():
        missing = types - by_topic.get(address, set())
        assert not missing, f"AsyncAPI channel {address}: {sorted(missing)} not in catalog/topics.yaml"


def test_publishers_and_subscribers_are_the_ones_dapr_allows(catalog):
    components = {c.name: c for c in cm.dapr_components() if c.type.startswith("pubsub.")}
    subs = cm.subscriptions()
    for api in catalog.of_kind("api"):
        if api.type != "asyncapi":
            continue
        topic, pubsub = api.annotation("topic"), components[api.annotation("pubsub")]
        scopes = cm.parse_scopes(pubsub.metadata.get("publishingScopes"))
        if scopes:
            allowed = {app for app, topics in scopes.items() if topic in topics}
        else:  # no topic scopes: every app the component is scoped to
            allowed = set(pubsub.scopes)
        declared = {app for s in subs if s.topic == topic and s.pubsub == pubsub.name for app in s.scopes}
        sub_scopes = cm.parse_scopes(pubsub.metadata.get("subscriptionScopes"))
        if sub_scopes:  # the apps allowed to subscribe (some subscribe in code, not by a Subscription file)
            subscribers = {app for app, topics in sub_scopes.items() if topic in topics}
            assert declared <= subscribers, f"Subscriptions to {topic} the component does not allow: {declared - subscribers}"
        else:
            subscribers = declared
        assert {c.name for c in catalog.providers(api)} == allowed, f"publishers of {topic}"
        assert {c.name for c in catalog.consumers(api)} == subscribers, f"subscribers of {topic}"


def test_service_invocation_callers_consume_the_callees_api(catalog):
    callers = cm.access_control_callers()
    assert callers, "no accessControl found in dapr-config/local"
    for callee, apps in callers.items():
        component = catalog.get(ref("component", callee))
        api = [a for a in catalog.refs(component, "providesApis") if a.type == "openapi"]
        assert len(api) == 1, callee
        for app in apps:
            consumer = catalog.get(ref("component", app))
            assert consumer is not None, f"{app} may call {callee} but is not in catalog/"
            assert api[0] in catalog.refs(consumer, "consumesApis"), f"{app} may call {callee}: consumesApis lacks {api[0].name}"
    # ...and a Dapr app listed as consuming another Dapr app's API is allowed to call it.
    for consumer in catalog.of_kind("component"):
        for api in catalog.refs(consumer, "consumesApis"):
            if api.type != "openapi":
                continue
            for provider in catalog.providers(api):
                if provider.name in callers and consumer.type in ("service", "gateway"):
                    assert consumer.name in callers[provider.name], f"{consumer.name} cannot call {provider.name}"


def test_apps_depend_on_exactly_the_dapr_components_scoped_to_them(catalog):
    scoped: dict[str, set[str]] = {}
    for c in cm.dapr_components():
        for app in c.scopes:
            scoped.setdefault(app, set()).add(c.name)
    for app, names in scoped.items():
        component = catalog.get(ref("component", app))
        assert component is not None, f"components/ scopes {app}, which is not in catalog/"
        used = {r.name for r in catalog.refs(component, "dependsOn") if r.type == "dapr-component"}
        assert used == names, f"{app}: dependsOn {sorted(used)} but components/ scopes {sorted(names)} to it"


def test_slo_files_belong_to_components_their_owner_label_names(catalog):
    assert cm.slo_files()
    for name, path in cm.slo_files().items():
        component = catalog.get(ref("component", name))
        assert component is not None, f"slo/{path.name}: no component {name}"
        owner = (cm.load_yaml(path).get("labels") or {}).get("owner")
        assert cm.parse_ref(component.spec["owner"], "owner") == ref("group", owner)
        assert component.path(component.annotation("slo")) == path


def test_parse_ref_defaults_like_backstage():
    assert cm.parse_ref("platform", "owner") == "group:default/platform"
    assert cm.parse_ref("resource:pubsub", "dependsOn") == "resource:default/pubsub"
    assert cm.parse_ref("api:other/x", "providesApis") == "api:other/x"
    with pytest.raises(cm.CatalogError):
        cm.parse_ref("pubsub", "dependsOn")
