"""Operations routes through the real server: readiness, the version, and the API's own document and page."""
import re
from importlib import metadata
from pathlib import Path

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from live import wait_for

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
TIMEOUT = (5, 10)
VERSION = metadata.version("harken")


@pytest.fixture(scope="module")
def openapi():
    return OpenAPI.from_file_path(str(SPEC_PATH))


def documented(openapi, response):
    """The response is valid for its operation in openapi.yaml; returns it."""
    openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))
    return response


def test_healthz_and_readyz_name_the_version(transport_server, openapi):
    """A server without models is ready at once; both probes report the package's version."""
    health = documented(openapi, requests.get(transport_server.url + "/healthz", timeout=TIMEOUT))
    ready = documented(openapi, requests.get(transport_server.url + "/readyz", timeout=TIMEOUT))
    assert health.status_code == ready.status_code == 200
    assert health.json()["version"] == ready.json()["version"] == VERSION
    assert ready.json()["status"] == "ready" and ready.json()["pipeline"]["pipeline"] == "none"


def test_openapi_document_is_served_as_shipped(transport_server):
    """GET /openapi.yaml returns the repository's document, as YAML, with the package's version."""
    # openapi-core reads an application/yaml body as bytes, so the text is compared here instead.
    response = requests.get(transport_server.url + "/openapi.yaml", timeout=TIMEOUT)
    operation = yaml.safe_load(SPEC_PATH.read_text())["paths"]["/openapi.yaml"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/yaml"]
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/yaml")
    assert response.text == SPEC_PATH.read_text()
    assert yaml.safe_load(response.text)["info"]["version"] == VERSION


def test_docs_page_lists_every_operation_and_schema_and_loads_nothing(transport_server, openapi):
    """GET /docs names each operation and schema of the document, and has no script or outside resource."""
    response = documented(openapi, requests.get(transport_server.url + "/docs", timeout=TIMEOUT))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.text
    spec = yaml.safe_load(SPEC_PATH.read_text())
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert f'<span class="method">{method.upper()}</span> {path}</h3>' in page, (method, path)
                assert operation["summary"].replace("'", "&#39;") in page, operation["summary"]
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page, name
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must load nothing from elsewhere"
    assert "<code>/ui/*</code>" in page and "/static/*" not in page


@pytest.mark.speech
def test_readyz_is_503_until_the_models_are_loaded(start_server, openapi):
    """While the speech models load, /readyz says 503 pipeline_unavailable with Retry-After and /healthz 200; then /readyz 200."""
    server = start_server(need_models=False, HARKEN_PIPELINE="speech")
    loading = documented(openapi, requests.get(server.url + "/readyz", timeout=TIMEOUT))
    health = requests.get(server.url + "/healthz", timeout=TIMEOUT)
    assert loading.status_code == 503, "the models loaded before the first probe: no loading window seen"
    assert loading.json()["error"]["code"] == "pipeline_unavailable"
    assert int(loading.headers["Retry-After"]) >= 0
    assert health.status_code == 200 and health.json()["ready"] is False
    assert wait_for(lambda: requests.get(server.url + "/readyz", timeout=TIMEOUT).status_code != 503,
                    300), "models not loaded in 300 s"
    ready = requests.get(server.url + "/readyz", timeout=TIMEOUT)
    assert documented(openapi, ready).status_code == 200 and ready.json()["pipeline"]["ready"] is True
