"""`make catalog`'s site: deterministic, and each page shows what its
entity's files say (OpenAPI operations, event schemas, SLOs)."""

import filecmp
from html.parser import HTMLParser

import catalog_model as cm
import generate

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


class Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id":
                self.ids.add(value)


def ids(path) -> set[str]:
    parser = Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.ids


def test_the_same_input_gives_the_same_bytes(site, tmp_path):
    again = tmp_path / "again"
    generate.build(again)
    compared = filecmp.dircmp(site, again)
    pending, differing = [compared], []
    while pending:
        c = pending.pop()
        differing += c.diff_files + c.left_only + c.right_only
        (_, mismatch, errors) = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        differing += mismatch + errors
        pending += c.subdirs.values()
    assert differing == []


def test_every_component_has_a_page(site, catalog):
    for c in catalog.of_kind("component"):
        assert (site / "components" / f"{c.name}.html").is_file(), c.name


def test_each_service_page_shows_every_operation_of_its_openapi(site, catalog):
    checked = 0
    for c in catalog.of_kind("component"):
        page = site / "components" / f"{c.name}.html"
        page_ids, text = ids(page), page.read_text(encoding="utf-8")
        for api in catalog.refs(c, "providesApis"):
            if api.type != "openapi":
                continue
            doc = cm.load_yaml(api.definition_file)
            for path, item in doc["paths"].items():
                for method in METHODS:
                    if method not in item:
                        continue
                    heading = f'{method.upper()}</span> <code>{path}</code></h4>'
                    assert heading in text, f"{c.name}: {method.upper()} {path} not rendered"
                    for code in item[method].get("responses") or {}:
                        assert f">{code}</td>" in text, f"{c.name}: {method.upper()} {path} {code}"
                    checked += 1
            assert any(i.startswith(f"{api.name}-op-") for i in page_ids)
    assert checked > 40


def test_each_topic_shows_its_event_schemas(site, catalog):
    for api in catalog.of_kind("api"):
        if api.type != "asyncapi":
            continue
        page = (site / "apis" / f"{api.name}.html").read_text(encoding="utf-8")
        for event_type in api.event_types:
            schema = cm.load_json(cm.event_schemas()[event_type])
            assert f'id="event-{api.annotation("topic")}-{event_type}"' in page
            for field in schema.get("properties") or {}:
                assert f"<code>{field}</code>" in page, f"{event_type}.{field} missing on {api.name}"


def test_service_pages_show_their_slos(site):
    for name, path in cm.slo_files().items():
        page = (site / "components" / f"{name}.html").read_text(encoding="utf-8")
        for slo in cm.load_yaml(path)["slos"]:
            assert f'data-slo="{slo["name"]}"' in page and f"{slo['objective']} %" in page


def test_markdown_anchors_follow_github():
    text = "# bookings\n## Runbook\ntext\n## Blue-green (the gateway)\n## Runbook\n```\n# not a heading\n```\n"
    blocks = generate.markdown_blocks(text)
    assert [b["id"] for b in blocks if b["kind"] == "heading"] == ["bookings", "runbook", "blue-green-the-gateway", "runbook-1"]
