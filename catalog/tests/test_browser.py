"""The generated site in a real headless browser (Debian's chromium, driven
by Playwright through executablePath): the index lists every service, every
link and anchor on every page resolves on a local HTTP server, and the
dependency picture renders."""

import functools
import http.server
import os
import threading
from collections import deque
from urllib.parse import urldefrag

import pytest
from playwright.sync_api import sync_playwright

import catalog_model as cm

CHROMIUM = os.environ.get("CATALOG_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: run scripts/catalog.sh install")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1400, "height": 1000}
        )
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def test_index_lists_every_service_sandbox_and_the_gateway(page, base_url, catalog):
    response = page.goto(base_url + "index.html")
    assert response.status == 200
    rows = page.eval_on_selector_all("tr[data-component]", "rows => rows.map(r => r.dataset.component)")
    expected = set(cm.services()) | {"gateway"}
    for c in catalog.of_kind("component"):
        source = c.annotation("source")
        if source and c.path(source).parent in (cm.REPO / "sandboxes", cm.REPO / "pluggable-components"):
            expected.add(c.name)
    assert len(expected) >= len(cm.services()) + len(cm.sandboxes()) + 1
    assert expected <= set(rows), f"missing from the index: {sorted(expected - set(rows))}"
    for name in expected:
        link = page.locator(f'tr[data-component="{name}"] a[href="components/{name}.html"]')
        assert link.is_visible(), name


def test_every_link_on_every_page_resolves(page, base_url):
    """Crawls the site from the index as the browser resolves each link; every
    target answers 200 and every #fragment names an element of its page."""
    start = base_url + "index.html"
    queue, seen_pages, status = deque([start]), set(), {}
    wanted_fragments: dict[str, set[str]] = {}
    page_ids: dict[str, set[str]] = {}
    while queue:
        url = queue.popleft()
        if url in seen_pages:
            continue
        seen_pages.add(url)
        response = page.goto(url)
        assert response is not None and response.status == 200, f"{url}: {response and response.status}"
        page_ids[url] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        targets = page.eval_on_selector_all(
            "a[href], img[src], link[href]", "els => els.map(e => e.href || e.src)"
        )
        for target in targets:
            if not target.startswith(base_url):
                continue  # nothing external is linked today; an external link would not be checked here
            plain, fragment = urldefrag(target)
            if fragment:
                wanted_fragments.setdefault(plain, set()).add(fragment)
            if plain not in status:
                status[plain] = page.request.get(plain).status
            if plain.endswith(".html") and plain not in seen_pages:
                queue.append(plain)
    broken = sorted(u for u, s in status.items() if s != 200)
    assert broken == [], f"links that do not resolve: {broken}"
    missing = sorted(
        f"{u}#{f}" for u, frags in wanted_fragments.items() for f in frags if f not in page_ids.get(u, set())
    )
    assert missing == [], f"anchors that name nothing: {missing}"
    assert len(seen_pages) > 50, f"only {len(seen_pages)} pages reached from the index"


def test_dependency_picture_renders(page, base_url, catalog):
    page.goto(base_url + "index.html")
    image = page.locator("#dependency-graph")
    image.scroll_into_view_if_needed()
    size = page.evaluate(
        "() => { const i = document.getElementById('dependency-graph');"
        " const r = i.getBoundingClientRect();"
        " return {complete: i.complete, natural: i.naturalWidth, width: r.width, height: r.height}; }"
    )
    assert size["complete"] and size["natural"] > 0, size
    assert size["width"] > 100 and size["height"] > 100, size

    response = page.goto(base_url + "dependencies.svg")
    assert response.status == 200 and "svg" in response.headers.get("content-type", "")
    box = page.locator("svg").first.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    titles = set(page.eval_on_selector_all("g.node > title", "ts => ts.map(t => t.textContent)"))
    for c in catalog.of_kind("component"):
        assert f"component:{c.name}" in titles, f"{c.name} is not in the picture"
    edges = page.locator("g.edge").count()
    assert edges > len(catalog.of_kind("component")), f"only {edges} edges"
