#!/usr/bin/env python3
"""The Python reference for bench/validate: loads every manifest of a marketplace
with PyYAML's C loader and validates it with jsonschema (Draft 2020-12) against
Setu's exported schemas. Usage: reference_validate.py MARKETPLACE SCHEMAS"""
import json
import os
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

KIND_FILES = {
    "Platform": "platform.schema.json", "Plan": "plan.schema.json",
    "ConsentProvider": "consent-provider.schema.json", "AlertRule": "alert-rule.schema.json",
    "Publisher": "publisher.schema.json", "API": "api.schema.json",
    "Consumer": "consumer.schema.json", "Subscription": "subscription.schema.json",
}


class Loader(yaml.CLoader):
    """The C loader without YAML 1.1 timestamps, so dates stay strings as in Setu (YAML 1.2)."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CLoader.yaml_implicit_resolvers.items()
}


def main():
    root, schemas = sys.argv[1], sys.argv[2]
    base = "file:///setu/schemas/"
    documents = {}
    for name in os.listdir(schemas):
        with open(os.path.join(schemas, name)) as f:
            documents[base + name] = json.load(f)
    registry = Registry().with_resources((uri, Resource.from_contents(doc)) for uri, doc in documents.items())
    validators = {
        kind: Draft202012Validator({"$ref": base + file}, registry=registry)
        for kind, file in KIND_FILES.items()
    }
    manifests = errors = files = 0
    for top in ("catalog", "policies", "subscriptions"):
        for folder, _, names in sorted(os.walk(os.path.join(root, top))):
            for name in sorted(names):
                if not name.endswith(".yaml") or name.endswith(".openapi.yaml"):
                    continue
                files += 1
                with open(os.path.join(folder, name), "rb") as f:
                    for document in yaml.load_all(f, Loader=Loader):
                        if document is None:
                            continue
                        manifests += 1
                        validator = validators.get(document.get("kind"))
                        if validator is None:
                            errors += 1
                            continue
                        errors += sum(1 for _ in validator.iter_errors(document))
    print(f"{manifests} manifests in {files} files, {errors} errors")


if __name__ == "__main__":
    main()
