"""The Shopify emulator's bulk import: staged uploads, bulk mutations, their status and results.

Over real HTTP against a sandbox subprocess. Every document sent is first checked against
Shopify's official Admin 2025-01 schema from the shared reference, so the emulator is driven
the way the real API is.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from typing import Any

import pytest
import requests
from graphql import build_client_schema, parse, validate

from tests.support.reference import reference_file
from tests.support.sandbox import SandboxControl, SandboxProcess, wait_until

TOKEN = "shpat_sandbox_token"
VERSION = "2026-10"

STAGED_UPLOADS_CREATE = """
mutation Stage($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}
"""
RUN_MUTATION = """
mutation Run($mutation: String!, $path: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $path) {
    bulkOperation { id status type }
    userErrors { code field message }
  }
}
"""
CURRENT = """
query Current {
  currentBulkOperation(type: MUTATION) { id status errorCode objectCount fileSize url partialDataUrl }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url partialDataUrl completedAt } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}
"""
PRODUCT_UPDATE = """
mutation Line($product: ProductUpdateInput!, $media: [CreateMediaInput!]) {
  productUpdate(product: $product, media: $media) {
    product { id title }
    userErrors { field message }
  }
}
"""
PRODUCT_READ = """
query Read($id: ID!) {
  product(id: $id) {
    title descriptionHtml description
    metafield(namespace: "pim", key: "material") { value type }
    media(first: 5) { nodes { ... on MediaImage { image { url } } } }
  }
}
"""


@lru_cache(maxsize=1)
def reference_schema():
    introspection = json.loads(reference_file("specs/shopify-admin-2025-01.introspection.json").read_text())
    return build_client_schema(introspection["data"])


def assert_valid(document: str) -> None:
    problems = validate(reference_schema(), parse(document))
    assert not problems, [problem.message for problem in problems]


class Admin:
    def __init__(self, sandbox: SandboxProcess, store: str) -> None:
        self.base = f"{sandbox.url}/shopify/{store}"
        self.session = requests.Session()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        assert_valid(query)
        response = self.session.post(
            f"{self.base}/admin/api/{VERSION}/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": TOKEN},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stage(self) -> dict[str, Any]:
        body = self.graphql(STAGED_UPLOADS_CREATE, {"input": [{
            "resource": "BULK_MUTATION_VARIABLES", "filename": "bulk_op_vars", "mimeType": "text/jsonl",
            "httpMethod": "POST",
        }]})
        payload = body["data"]["stagedUploadsCreate"]
        assert payload["userErrors"] == []
        target: dict[str, Any] = payload["stagedTargets"][0]
        return target

    def upload(self, target: dict[str, Any], content: bytes, **overrides: str) -> requests.Response:
        fields = {parameter["name"]: parameter["value"] for parameter in target["parameters"]}
        fields.update(overrides)
        return self.session.post(target["url"], data=fields, files={"file": ("bulk_op_vars", content)}, timeout=10)

    def staged(self, lines: list[dict[str, Any]]) -> str:
        target = self.stage()
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        response = self.upload(target, content)
        assert response.status_code == 201, response.text
        return next(p["value"] for p in target["parameters"] if p["name"] == "key")

    def run(self, path: str, mutation: str = PRODUCT_UPDATE) -> dict[str, Any]:
        payload: dict[str, Any] = self.graphql(RUN_MUTATION, {"mutation": mutation, "path": path})["data"][
            "bulkOperationRunMutation"
        ]
        return payload

    def operation(self, operation_id: str) -> dict[str, Any]:
        node: dict[str, Any] = self.graphql(NODE, {"id": operation_id})["data"]["node"]
        return node

    def finished(self, operation_id: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_until(
            lambda: (op := self.operation(operation_id))["status"] in ("COMPLETED", "FAILED", "CANCELED") and op,
            timeout=timeout,
            message=lambda: f"operation still {self.operation(operation_id)}",
        )


@pytest.fixture
def store() -> str:
    return f"bulk-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(sandbox: SandboxProcess, store: str) -> Admin:
    return Admin(sandbox, store)


def seed(control: SandboxControl, store: str, count: int) -> list[str]:
    """Products SKU-0..n-1; their product GIDs."""
    return [control.put_item("shopify", store, f"SKU-{n}", price="10.00", available=1)["product_id"]
            for n in range(count)]


def line(product_id: str, n: int) -> dict[str, Any]:
    return {"product": {"id": product_id, "title": f"New title {n}", "descriptionHtml": f"<p>Desc <b>{n}</b></p>",
                        "metafields": [{"namespace": "pim", "key": "material", "type": "single_line_text_field",
                                        "value": f"wool-{n}"}]},
            "media": [{"originalSource": f"https://cdn.example.com/{n}.jpg", "mediaContentType": "IMAGE"}]}


def test_bulk_product_update_applies_each_line_and_reports_bad_ones_in_the_result_file(
    admin: Admin, control: SandboxControl, store: str
) -> None:
    # given three products and a file with two good lines, a missing product and a bad variable
    products = seed(control, store, 3)
    lines = [line(products[0], 0), line(products[1], 1),
             line("gid://shopify/Product/1", 2),
             {"product": {"id": products[2], "title": 42, "metafields": "not a list"}}]
    path = admin.staged(lines)

    # when the bulk mutation runs to completion
    started = admin.run(path)
    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    assert started["bulkOperation"]["type"] == "MUTATION"
    finished = admin.finished(started["bulkOperation"]["id"])

    # then every line was processed, the good ones are in the store
    assert finished["status"] == "COMPLETED"
    assert finished["objectCount"] == "4"
    assert finished["errorCode"] is None
    product = admin.graphql(PRODUCT_READ, {"id": products[1]})["data"]["product"]
    assert product["title"] == "New title 1"
    assert product["descriptionHtml"] == "<p>Desc <b>1</b></p>"
    assert product["description"] == "Desc 1"
    assert product["metafield"] == {"value": "wool-1", "type": "single_line_text_field"}
    assert product["media"]["nodes"] == [{"image": {"url": "https://cdn.example.com/1.jpg"}}]
    item = control.item("shopify", store, "SKU-0")
    assert item is not None and item["title"] == "New title 0" and item["metafields"] == {"pim.material": "wool-0"}

    # and the result file has one line per input line, in order, with the failures spelled out
    results = [json.loads(text) for text in requests.get(finished["url"], timeout=10).text.splitlines()]
    assert [result["__lineNumber"] for result in results] == [0, 1, 2, 3]
    assert results[0]["data"]["productUpdate"] == {"product": {"id": products[0], "title": "New title 0"},
                                                   "userErrors": []}
    assert results[2]["data"]["productUpdate"]["userErrors"] == [{"field": ["id"], "message": "Product does not exist"}]
    assert "data" not in results[3]
    assert results[3]["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert control.item("shopify", store, "SKU-2")["title"] == "SKU-2"


def test_a_second_bulk_mutation_is_refused_while_one_runs(admin: Admin, control: SandboxControl, store: str) -> None:
    # given a slow store running a bulk mutation of 40 lines
    control.config("shopify", store, bulk_lines_per_s=4)
    products = seed(control, store, 2)
    first = admin.run(admin.staged([line(products[n % 2], n) for n in range(40)]))["bulkOperation"]

    # when a second one is started
    second = admin.run(admin.staged([line(products[0], 0)]))

    # then it is refused with Shopify's user error, naming the running one
    assert second["bulkOperation"] is None
    assert second["userErrors"] == [{
        "code": "OPERATION_IN_PROGRESS", "field": None,
        "message": f"A bulk mutation operation for this app and shop is already in progress: {first['id']}.",
    }]
    current = admin.graphql(CURRENT)["data"]["currentBulkOperation"]
    assert current["id"] == first["id"] and current["status"] in ("CREATED", "RUNNING")

    # and once the first is cancelled, a new one may run
    cancel = admin.graphql(CANCEL, {"id": first["id"]})["data"]["bulkOperationCancel"]
    assert cancel["userErrors"] == [] and cancel["bulkOperation"]["status"] == "CANCELING"
    assert admin.finished(first["id"])["status"] == "CANCELED"
    control.config("shopify", store, bulk_lines_per_s=1000)
    again = admin.run(admin.staged([line(products[0], 0)]))
    assert again["userErrors"] == []
    assert admin.finished(again["bulkOperation"]["id"])["status"] == "COMPLETED"


def test_bulk_mutation_refuses_bad_documents_missing_files_and_bad_jsonl(admin: Admin, control: SandboxControl,
                                                                         store: str) -> None:
    products = seed(control, store, 1)
    path = admin.staged([line(products[0], 0)])

    not_a_field = admin.run(path, "mutation M($p: ProductUpdateInput!) { productUpdat(product: $p) { userErrors { message } } }")
    assert not_a_field["userErrors"][0]["code"] == "INVALID_MUTATION"
    a_query = admin.run(path, "query { shop { name } }")
    assert a_query["userErrors"][0]["code"] == "INVALID_MUTATION"
    two_fields = admin.run(path, "mutation M($p: ProductUpdateInput!) { a: productUpdate(product: $p) { userErrors { message } }"
                                 " b: productUpdate(product: $p) { userErrors { message } } }")
    assert two_fields["userErrors"][0]["code"] == "INVALID_MUTATION"

    missing = admin.run("tmp/1/bulk/nothing/bulk_op_vars")
    assert missing["userErrors"][0]["code"] == "NO_SUCH_FILE"

    target = admin.stage()
    assert admin.upload(target, b'{"product": {}}\nnot json\n').status_code == 201
    key = next(p["value"] for p in target["parameters"] if p["name"] == "key")
    bad_file = admin.run(key)
    assert bad_file["userErrors"][0]["code"] == "INVALID_STAGED_UPLOAD_FILE"
    assert "line 2" in bad_file["userErrors"][0]["message"]
    assert admin.graphql(CURRENT)["data"]["currentBulkOperation"] is None


def test_staged_upload_refuses_a_forged_policy_an_unknown_key_and_an_oversized_file(
    admin: Admin, control: SandboxControl, store: str
) -> None:
    # given a target, shaped like Shopify's GCS one
    target = admin.stage()
    names = [parameter["name"] for parameter in target["parameters"]]
    assert names == ["key", "Content-Type", "success_action_status", "acl", "policy", "x-goog-credential",
                     "x-goog-algorithm", "x-goog-date", "x-goog-signature"]
    assert target["url"].endswith(f"/shopify/{store}/_staged/")

    forged = admin.upload(target, b"{}\n", **{"x-goog-signature": "00" * 32})
    assert forged.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in forged.text
    other_policy = admin.upload(target, b"{}\n", policy="eyJ9")
    assert other_policy.status_code == 403 and "<Code>AccessDenied</Code>" in other_policy.text
    unknown = admin.upload(target, b"{}\n", key="tmp/elsewhere/bulk_op_vars")
    assert unknown.status_code == 403

    control.config("shopify", store, staged_upload_max_bytes=64)
    small = admin.stage()
    too_big = admin.upload(small, b'{"product": {"id": "x"}}\n' * 10)
    assert too_big.status_code == 400 and "<Code>EntityTooLarge</Code>" in too_big.text
    fits = admin.upload(small, b"{}\n")
    assert fits.status_code == 201 and "<PostResponse>" in fits.text


def test_a_failing_bulk_operation_reports_its_error_code_and_partial_data(
    admin: Admin, control: SandboxControl, store: str
) -> None:
    control.config("shopify", store, bulk_fail_after_lines=2)
    products = seed(control, store, 1)
    started = admin.run(admin.staged([line(products[0], n) for n in range(5)]))
    finished = admin.finished(started["bulkOperation"]["id"])
    assert finished["status"] == "FAILED"
    assert finished["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert finished["url"] is None
    partial = requests.get(finished["partialDataUrl"], timeout=10).text.splitlines()
    assert [json.loads(text)["__lineNumber"] for text in partial] == [0, 1]
    forged = requests.get(finished["partialDataUrl"].split("?")[0] + "?X-Goog-Signature=0", timeout=10)
    assert forged.status_code == 403


def test_bulk_calls_are_charged_like_other_mutations(admin: Admin, control: SandboxControl, store: str) -> None:
    products = seed(control, store, 1)
    path = admin.staged([line(products[0], 0)])
    body = admin.graphql(RUN_MUTATION, {"mutation": PRODUCT_UPDATE, "path": path})
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] >= 10
    assert cost["actualQueryCost"] >= 10
    assert cost["throttleStatus"]["currentlyAvailable"] < cost["throttleStatus"]["maximumAvailable"]
