"""The API's own description: `GET /openapi.yaml` (the document shipped in the package) and `GET /docs` (a plain page generated from it, nothing from a CDN)."""
import functools
import re
from pathlib import Path

import yaml
from flask import Blueprint, Response, render_template
from markupsafe import Markup, escape

bp = Blueprint("apidoc", __name__)

# app/openapi.yaml is the repository's openapi.yaml (a symlink in a checkout, a copy in a wheel).
DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


@functools.lru_cache(maxsize=1)
def _document_text():
    return DOCUMENT.read_text(encoding="utf-8")


@bp.get("/openapi.yaml")
def openapi_yaml():
    """The OpenAPI 3.0 document that describes every route (`application/yaml`, RFC 9512)."""
    return Response(_document_text(), mimetype="application/yaml")


@bp.get("/docs")
def docs():
    """A human-readable page of the same document: each operation, its parameters and answers, and the schemas."""
    return _docs_page()


@functools.lru_cache(maxsize=1)
def _docs_page():
    spec = yaml.safe_load(_document_text())
    operations = [{"method": method.upper(), "path": path, "anchor": _anchor(method, path), **op,
                   "parameters": [_resolve(spec, p) for p in ops.get("parameters", []) +
                                  op.get("parameters", [])],
                   "responses": [(status, _resolve(spec, answer))
                                 for status, answer in op.get("responses", {}).items()]}
                  for path, ops in spec["paths"].items() for method, op in ops.items()
                  if method in METHODS]
    schemas = spec.get("components", {}).get("schemas", {})
    return render_template("api.html", info=spec["info"], operations=operations, schemas=schemas,
                           prose=_prose, ref_name=_ref_name)


def _resolve(spec, node):
    """A `$ref` to `#/components/…` followed once (responses and parameters are shared there)."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not ref or not ref.startswith("#/"):
        return node
    for part in ref[2:].split("/"):
        spec = spec[part]
    return spec


def _ref_name(node):
    """The schema a `$ref` names, or the node's type, for one line of a table."""
    if not isinstance(node, dict):
        return ""
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[1]
    if node.get("type") == "array":
        return f"array of {_ref_name(node.get('items', {})) or 'any'}"
    variants = node.get("oneOf") or node.get("anyOf")
    if variants:
        return " or ".join(_ref_name(v) for v in variants)
    if node.get("allOf"):  # `Error` narrowed to some codes: the first part names it
        return _ref_name(node["allOf"][0])
    if "enum" in node:
        return f"{node.get('type', '')} ({' | '.join(map(str, node['enum']))})"
    return node.get("type", "")


def _anchor(method, path):
    return method + "-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def _prose(text):
    """The document's Markdown-ish text as safe HTML: paragraphs, and `code` spans."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    html = []
    for paragraph in paragraphs:
        parts = re.split(r"`([^`]*)`", str(escape(paragraph)))
        html.append("<p>" + "".join(f"<code>{part}</code>" if i % 2 else part
                                     for i, part in enumerate(parts)) + "</p>")
    return Markup("\n".join(html))
