"""Backstage itself accepts every entity: the policies and kind validators
its catalog runs on ingestion (@backstage/catalog-model, pinned in
scripts/catalog/backstage/), after the `$text` placeholders are substituted
as Backstage's placeholder processor does."""

import json
import os
import shutil
import subprocess

import pytest

import catalog_model as cm

VALIDATOR = cm.REPO / "scripts" / "catalog" / "backstage" / "validate.cjs"


def as_ingested(entity: cm.Entity) -> dict:
    data = json.loads(json.dumps(entity.data))
    if entity.definition_file:
        data["spec"]["definition"] = entity.definition_file.read_text(encoding="utf-8")
    return data


def validate(entities: list[dict]) -> dict:
    modules = os.environ.get("CATALOG_NODE_MODULES")
    if not modules or not os.path.isdir(modules) or not shutil.which("node"):
        pytest.fail("Backstage's validators are not installed: run scripts/catalog.sh check")
    run = subprocess.run(
        ["node", str(VALIDATOR)],
        input=json.dumps(entities),
        capture_output=True,
        text=True,
        env=dict(os.environ, CATALOG_NODE_MODULES=modules),
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_backstage_accepts_every_entity(catalog):
    result = validate([as_ingested(e) for e in catalog.entities.values()])
    assert result["checked"] == len(catalog.entities)
    assert result["refused"] == []


def test_backstage_refuses_what_it_should():
    """The validators are really applied: a relative link, a bad name and an
    API without a definition are refused."""
    base = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "spec": {"type": "service", "lifecycle": "production", "owner": "group:platform"}}
    bad = [
        dict(base, metadata={"name": "ok-name", "links": [{"url": "../docs/x.md"}]}),
        dict(base, metadata={"name": "not a name"}),
        {"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "x"},
         "spec": {"type": "openapi", "lifecycle": "production", "owner": "group:platform"}},
    ]
    result = validate(bad)
    assert len(result["refused"]) == 3, result
