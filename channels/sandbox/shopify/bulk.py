"""Staged uploads and bulk mutations, as Shopify runs them for a bulk import.

    stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES, filename, mimeType,
                                 httpMethod: POST}])
        -> a target on the sandbox itself, shaped like Shopify's Google Cloud Storage one:
           url `{store}/_staged/` and the form fields to send with the file (`key`,
           `Content-Type`, `success_action_status`, `acl`, `policy`, `x-goog-*`); the key is
           the `stagedUploadPath`.
    POST {store}/_staged/  multipart/form-data: every parameter handed out, then `file`
        -> 201 with GCS's XML `PostResponse`; a key, policy or signature not handed out is
           403 `AccessDenied` / `SignatureDoesNotMatch`, an expired policy 400
           `ExpiredToken`, a file over the policy's content-length range (20 MB) 400
           `EntityTooLarge`, as GCS answers.
    bulkOperationRunMutation(mutation:, stagedUploadPath:)
        -> the mutation is validated against the schema (one root field, a mutation this
           sandbox emulates in bulk: productUpdate, productSet, productVariantsBulkUpdate),
           the file must exist and be JSONL of objects; user errors INVALID_MUTATION,
           NO_SUCH_FILE, INVALID_STAGED_UPLOAD_FILE, and OPERATION_IN_PROGRESS while another
           bulk mutation of the shop is CREATED, RUNNING or CANCELING (one at a time).
    currentBulkOperation(type: MUTATION) / node(id:) / bulkOperationCancel(id:)
        -> status CREATED -> RUNNING -> COMPLETED (or FAILED, CANCELING -> CANCELED),
           objectCount (lines done), errorCode, fileSize, and `url` of the result JSONL (one
           line per input line that ran: `{"data": ..., "__lineNumber": n}` or `{"errors": ...,
           "__lineNumber": n}`), served at `{store}/_bulk/{id}.jsonl?X-Goog-Signature=...`;
           `partialDataUrl` for a FAILED operation's lines so far.

Lines run in a background thread at `bulk_lines_per_s` (config, default 250 lines/s), a few
at a time under the store's lock, each executed like a request of the API version the
operation was started with, without the cost bucket (bulk work is not charged per line).
`bulk_fail_after_lines` (config) makes the next operations fail with INTERNAL_SERVER_ERROR
after that many lines, for tests of the FAILED path.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from graphql import FieldNode, OperationDefinitionNode, OperationType, execute_sync

from ..messages import Request, Response
from .catalog import gid, iso_timestamp, parse_gid
from .documents import (
    RequestError,
    check_input_sizes,
    check_version_rules,
    coerce_variables,
    compile_document,
)
from .graphql_schema import admin_schema
from .idempotency import IdempotencyKeys
from .mutations import user_error
from .resolvers import RequestContext, Root, resolve_field, resolve_type
from .versions import ApiVersion
from .views import Shop, View

STAGED_PATH = "/_staged"
RESULTS_PATH = "/_bulk/"
BUCKET = "shopify-staged-uploads"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # "20 MB max" (the policy's content-length-range)
POLICY_TTL_S = 3600.0
DEFAULT_LINES_PER_S = 250.0
TICK_S = 0.05
LINES_PER_HOLD = 20
BULK_MUTATIONS = frozenset({"productUpdate", "productSet", "productVariantsBulkUpdate"})
ACTIVE = frozenset({"CREATED", "RUNNING", "CANCELING"})
CREDENTIAL = "merchant-assets@shopify-tiers.iam.gserviceaccount.com/{day}/auto/storage/goog4_request"


@dataclass
class StagedTarget:
    key: str
    policy: str
    signature: str
    content_type: str
    expires_at: float
    max_bytes: int


@dataclass
class BulkOperation:
    id: int
    type: str
    mutation: str
    staged_path: str
    lines: list[dict[str, Any]]
    version: ApiVersion
    created_at: float
    status: str = "CREATED"
    error_code: str | None = None
    completed_at: float | None = None
    object_count: int = 0
    results: list[str] = field(default_factory=list)
    fail_after: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def gid(self) -> str:
        return gid("BulkOperation", self.id)

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE


class BulkOperationView(View):
    graphql_type = "BulkOperation"

    def __init__(self, shop: Shop, operation: BulkOperation, registry: BulkOperations) -> None:
        super().__init__(shop)
        self.operation = operation
        self.registry = registry

    def id(self) -> str:
        return self.operation.gid

    def type(self) -> str:
        return self.operation.type

    def status(self) -> str:
        return self.operation.status

    def error_code(self) -> str | None:
        return self.operation.error_code

    def created_at(self) -> str:
        return iso_timestamp(self.operation.created_at)

    def completed_at(self) -> str | None:
        return iso_timestamp(self.operation.completed_at) if self.operation.completed_at else None

    def object_count(self) -> str:
        return str(self.operation.object_count)  # UnsignedInt64 is serialized as a string

    def root_object_count(self) -> str:
        return str(self.operation.object_count)

    def query(self) -> str:
        return self.operation.mutation

    def file_size(self) -> str | None:
        if self.operation.status != "COMPLETED" or not self.operation.results:
            return None
        return str(len(self.registry.result_bytes(self.operation)))

    def url(self) -> str | None:
        if self.operation.status != "COMPLETED" or not self.operation.results:
            return None  # Shopify gives no file when nothing came out
        return self.registry.result_url(self.operation)

    def partial_data_url(self) -> str | None:
        if self.operation.status != "FAILED" or not self.operation.results:
            return None
        return self.registry.result_url(self.operation)


class BulkOperations:
    """One shop's staged uploads and bulk operations; every method but the worker's is
    called with the store's lock held (from a resolver or the store's routes)."""

    def __init__(
        self, lock: threading.Lock, settings: Callable[[], dict[str, Any]], shop: Shop, idempotency: IdempotencyKeys
    ) -> None:
        self.lock = lock
        self.settings = settings  # the store's config; read with the lock held
        self.shop = shop
        self.idempotency = idempotency
        self.public_url = ""  # `{sandbox}/shopify/{store}` as the last request reached it
        self.targets: dict[str, StagedTarget] = {}
        self.files: dict[str, bytes] = {}
        self.operations: dict[int, BulkOperation] = {}
        self._secret = secrets.token_bytes(32)

    # --- stagedUploadsCreate ------------------------------------------------------------------

    def staged_uploads_create(self, inputs: list[dict[str, Any]], now: float) -> dict[str, Any]:
        targets, problems = [], []
        for index, entry in enumerate(inputs):
            where = ["input", str(index)]
            if entry["resource"] != "BULK_MUTATION_VARIABLES":
                problems.append({"field": [*where, "resource"],
                                 "message": f"Staged uploads for {entry['resource']} are not emulated by the syncsvc "
                                            "sandbox (only BULK_MUTATION_VARIABLES)"})
                continue
            if (entry.get("httpMethod") or "PUT") != "POST":
                problems.append({"field": [*where, "httpMethod"],
                                 "message": "Bulk mutation variables are uploaded with httpMethod POST"})
                continue
            targets.append(self._target(entry, now))
        if problems:
            return {"stagedTargets": None, "userErrors": problems}
        return {"stagedTargets": targets, "userErrors": []}

    def _target(self, entry: dict[str, Any], now: float) -> dict[str, Any]:
        max_bytes = int(self.settings().get("staged_upload_max_bytes") or MAX_UPLOAD_BYTES)
        filename = entry["filename"].rsplit("/", 1)[-1] or "bulk_op_vars"
        key = f"tmp/{self._shop_number()}/bulk/{uuid.uuid4()}/{filename}"
        expires_at = now + POLICY_TTL_S
        policy_document = {
            "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
            "conditions": [
                ["eq", "$bucket", BUCKET],
                ["eq", "$key", key],
                {"acl": "private"},
                {"success_action_status": "201"},
                ["eq", "$Content-Type", entry["mimeType"]],
                ["content-length-range", 1, max_bytes],
            ],
        }
        policy = base64.b64encode(json.dumps(policy_document, separators=(",", ":")).encode()).decode()
        signature = hmac.new(self._secret, policy.encode(), hashlib.sha256).hexdigest()
        self.targets[key] = StagedTarget(key, policy, signature, entry["mimeType"], expires_at, max_bytes)
        day = time.strftime("%Y%m%d", time.gmtime(now))
        parameters = {
            "key": key,
            "Content-Type": entry["mimeType"],
            "success_action_status": "201",
            "acl": "private",
            "policy": policy,
            "x-goog-credential": CREDENTIAL.format(day=day),
            "x-goog-algorithm": "GOOG4-RSA-SHA256",
            "x-goog-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
            "x-goog-signature": signature,
        }
        return {
            "url": f"{self.public_url}{STAGED_PATH}/",
            "resourceUrl": None,
            "parameters": [{"name": name, "value": value} for name, value in parameters.items()],
        }

    def _shop_number(self) -> int:
        return int.from_bytes(hashlib.sha256(self.public_url.encode()).digest()[:3], "big")

    # --- the upload (the storage bucket's side) -------------------------------------------------

    def receive_upload(self, fields: dict[str, bytes] | None, now: float) -> Response:
        """A browser-style POST to the bucket (its form, parsed by `parse_form` before the
        lock is taken): the policy's fields, then the file."""
        if fields is None:
            return storage_error(400, "InvalidArgument", "Invalid argument.", "POST requires multipart/form-data")
        key = fields.get("key", b"").decode(errors="replace")
        target = self.targets.get(key)
        if target is None or "file" not in fields:
            return storage_error(403, "AccessDenied", "Access denied.",
                                 "No policy was handed out for this key" if target is None else "No file in the form")
        policy = fields.get("policy", b"").decode(errors="replace")
        signature = fields.get("x-goog-signature", b"").decode(errors="replace")
        if not hmac.compare_digest(policy, target.policy):
            return storage_error(403, "AccessDenied", "Access denied.", "Policy does not match the one issued")
        if not hmac.compare_digest(signature, target.signature):
            return storage_error(403, "SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the signature you provided.")
        if now > target.expires_at:
            return storage_error(400, "ExpiredToken", "The provided token has expired.", "Policy expired")
        if len(fields["file"]) > target.max_bytes:
            return storage_error(400, "EntityTooLarge",
                                 "Your proposed upload is larger than the maximum object size specified in your "
                                 "Policy Document.", "Content-length exceeds upper bound on range")
        content = fields["file"]
        self.files[key] = content
        etag = hashlib.md5(content).hexdigest()  # noqa: S324 (an ETag, not security)
        location = f"{self.public_url}{STAGED_PATH}/{quote(key)}"
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><PostResponse>"
            f"<Location>{escape(location)}</Location><Bucket>{BUCKET}</Bucket>"
            f"<Key>{escape(key)}</Key><ETag>\"{etag}\"</ETag></PostResponse>"
        )
        return Response(201, None, {"ETag": f'"{etag}"'}, raw=body.encode(), content_type="application/xml")

    # --- bulkOperationRunMutation --------------------------------------------------------------

    def run_mutation(self, shop: Shop, arguments: dict[str, Any], version: ApiVersion, now: float) -> dict[str, Any]:
        def refused(message: str, code: str, field_path: list[str] | None = None) -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [user_error(message, field_path, code)]}

        running = self._running()
        if running is not None:
            return refused(f"A bulk mutation operation for this app and shop is already in progress: {running.gid}.",
                           "OPERATION_IN_PROGRESS")
        mutation = arguments["mutation"]
        problem = mutation_problem(mutation)
        if problem:
            return refused(problem, "INVALID_MUTATION", ["mutation"])
        content = self.files.get(arguments["stagedUploadPath"])
        if content is None:
            return refused("The JSONL file could not be found. Try uploading the file again.", "NO_SUCH_FILE",
                           ["stagedUploadPath"])
        lines, bad_line = parse_jsonl(content)
        if bad_line is not None:
            return refused(f"The JSONL file is invalid: line {bad_line + 1} is not a JSON object.",
                           "INVALID_STAGED_UPLOAD_FILE", ["stagedUploadPath"])
        fail_after = self.settings().get("bulk_fail_after_lines")
        operation = BulkOperation(
            id=shop.catalog.next_id("BulkOperation"),
            type="MUTATION",
            mutation=mutation,
            staged_path=arguments["stagedUploadPath"],
            lines=lines,
            version=version,
            created_at=now,
            fail_after=int(fail_after) if fail_after is not None else None,
        )
        self.operations[operation.id] = operation
        threading.Thread(target=self._work, args=(operation,), name=f"bulk-{operation.id}", daemon=True).start()
        return {"bulkOperation": BulkOperationView(shop, operation, self), "userErrors": []}

    def _running(self) -> BulkOperation | None:
        return next((op for op in self.operations.values() if op.type == "MUTATION" and not op.finished), None)

    # --- reading and cancelling ------------------------------------------------------------------

    def current(self, shop: Shop, operation_type: str) -> BulkOperationView | None:
        latest = [op for op in self.operations.values() if op.type == operation_type]
        return BulkOperationView(shop, latest[-1], self) if latest else None

    def node(self, shop: Shop, number: int) -> BulkOperationView | None:
        operation = self.operations.get(number)
        return BulkOperationView(shop, operation, self) if operation else None

    def cancel(self, shop: Shop, text: str) -> dict[str, Any]:
        parsed = parse_gid(text, "BulkOperation")
        operation = self.operations.get(parsed[1]) if parsed else None
        if operation is None:
            return {"bulkOperation": None, "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}]}
        if operation.finished:
            message = f"A bulk operation cannot be canceled when it is {operation.status.lower()}"
            return {"bulkOperation": BulkOperationView(shop, operation, self),
                    "userErrors": [{"field": None, "message": message}]}
        operation.status = "CANCELING"
        operation.stop.set()
        return {"bulkOperation": BulkOperationView(shop, operation, self), "userErrors": []}

    # --- results ----------------------------------------------------------------------------------

    def result_url(self, operation: BulkOperation) -> str:
        return f"{self.public_url}{RESULTS_PATH}{operation.id}.jsonl?X-Goog-Signature={self._result_signature(operation.id)}"

    def result_bytes(self, operation: BulkOperation) -> bytes:
        return "".join(line + "\n" for line in operation.results).encode()

    def serve_result(self, request: Request) -> Response:
        name = request.subpath[len(RESULTS_PATH):]
        number = name.removesuffix(".jsonl")
        operation = self.operations.get(int(number)) if number.isdigit() and name.endswith(".jsonl") else None
        if operation is None:
            return storage_error(404, "NoSuchKey", "The specified key does not exist.")
        if not hmac.compare_digest(request.query.get("X-Goog-Signature", ""), self._result_signature(operation.id)):
            return storage_error(403, "SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the signature you provided.")
        if operation.status not in ("COMPLETED", "FAILED"):
            return storage_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(200, None, raw=self.result_bytes(operation), content_type="application/jsonl")

    def _result_signature(self, number: int) -> str:
        return hmac.new(self._secret, f"result:{number}".encode(), hashlib.sha256).hexdigest()

    def _run_line(self, operation: BulkOperation, variables: dict[str, Any]) -> dict[str, Any]:
        """One line as its own request: variables coerced and checked like a request's, then run."""
        schema = admin_schema()
        document = compile_document(operation.mutation).document
        assert document is not None  # validated when the operation was started
        definition = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        try:
            coerced = coerce_variables(schema, definition, variables)
            check_version_rules(schema, document, definition, variables, operation.version)
            check_input_sizes(schema, definition, coerced)
        except RequestError as refusal:
            return {"errors": refusal.errors}
        context = RequestContext(self.shop, operation.version, self.idempotency, time.time())
        result = execute_sync(
            schema,
            document,
            root_value=Root(context),
            context_value=context,
            variable_values=variables,
            field_resolver=resolve_field,
            type_resolver=resolve_type,
        )
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [dict(error.formatted) for error in result.errors]
        body["data"] = result.data
        return body

    # --- the worker -------------------------------------------------------------------------------

    def _work(self, operation: BulkOperation) -> None:
        """Run the lines at the configured pace. The lock is held for a few lines at a time
        (`LINES_PER_HOLD`) and never while waiting, so the shop's other requests (a price push
        during a nightly refresh) do not queue behind the bulk job."""
        started = time.monotonic()
        done = 0
        while True:
            if operation.stop.wait(TICK_S):
                with self.lock:
                    operation.status, operation.completed_at = "CANCELED", None
                return
            with self.lock:
                if operation.status == "CREATED":
                    operation.status = "RUNNING"
                rate = float(self.settings().get("bulk_lines_per_s") or DEFAULT_LINES_PER_S)
            due = min(len(operation.lines), max(done + 1, int((time.monotonic() - started) * rate)))
            while done < due and not operation.stop.is_set():
                with self.lock:
                    for _ in range(min(LINES_PER_HOLD, due - done)):
                        if operation.fail_after is not None and done >= operation.fail_after:
                            operation.status, operation.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
                            operation.completed_at = None
                            return
                        result = self._run_line(operation, operation.lines[done])
                        operation.results.append(json.dumps({**result, "__lineNumber": done}, separators=(",", ":")))
                        done += 1
                        operation.object_count = done
                    if done >= len(operation.lines):
                        operation.status, operation.completed_at = "COMPLETED", time.time()
                        return


def mutation_problem(mutation: str) -> str | None:
    """Why a bulk mutation document cannot run, or None."""
    compiled = compile_document(mutation)
    if compiled.errors or compiled.document is None:
        return f"Invalid mutation: {compiled.errors[0]['message'] if compiled.errors else 'cannot parse'}"
    operations = [d for d in compiled.document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation is not OperationType.MUTATION:
        return "Invalid mutation: the document must hold exactly one mutation operation."
    fields = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
    if len(fields) != 1 or len(operations[0].selection_set.selections) != 1:
        return "Invalid mutation: a bulk mutation must select exactly one mutation field."
    name = fields[0].name.value
    if name not in BULK_MUTATIONS:
        return f"Invalid mutation: {name} is not supported in bulk by the syncsvc sandbox ({', '.join(sorted(BULK_MUTATIONS))})."
    return None


def parse_jsonl(content: bytes) -> tuple[list[dict[str, Any]], int | None]:
    """The lines as objects, or the index of the first line that is not one."""
    lines: list[dict[str, Any]] = []
    for index, raw in enumerate(content.splitlines()):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            return [], index
        if not isinstance(value, dict):
            return [], index
        lines.append(value)
    return lines, None


def parse_form(content_type: str, body: bytes) -> dict[str, bytes] | None:
    """A multipart/form-data body as field name -> bytes; None when it is not one."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def storage_error(status: int, code: str, message: str, details: str = "") -> Response:
    """Google Cloud Storage's XML error body."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?><Error>"
        f"<Code>{code}</Code><Message>{escape(message)}</Message>"
        + (f"<Details>{escape(details)}</Details>" if details else "")
        + "</Error>"
    )
    return Response(status, None, raw=body.encode(), content_type="application/xml")
