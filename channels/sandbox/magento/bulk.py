"""Magento's asynchronous bulk API: `POST /rest/{code}/async/bulk/V1/...` with an array of
request bodies answers 202 at once; a consumer runs each operation later.

    {"bulk_uuid": "...", "request_items": [{"id": 0, "data_hash": null, "status": "accepted"}], "errors": false}

`GET /V1/bulk/{uuid}/detailed-status` shows each operation's status: 1 complete, 2 failed
(retriable), 3 failed (needs a change to the request), 4 open, 5 rejected. An operation whose
service returned normally is complete even if the answer lists failed rows (base-prices answers
its failures as data, not as an exception); they are in `result_serialized_data`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .catalog import magento_datetime
from .errors import MagentoError

COMPLETE, RETRIABLY_FAILED, NOT_RETRIABLY_FAILED, OPEN, REJECTED = 1, 2, 3, 4, 5
ADMIN_USER_TYPE = 2

# What the consumer runs for one operation: its parameters in, the service's answer out.
OperationRunner = Callable[[dict[str, Any]], Any]


@dataclass
class Operation:
    id: int
    topic_name: str
    parameters: dict[str, Any]
    status: int = OPEN
    result_serialized_data: str | None = None
    result_message: str | None = None
    error_code: int | None = None

    def as_json(self, bulk_uuid: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "bulk_uuid": bulk_uuid,
            "topic_name": self.topic_name,
            "serialized_data": json.dumps(
                {"entity_id": None, "entity_link": "", "meta_information": json.dumps(self.parameters)}
            ),
            "result_serialized_data": self.result_serialized_data,
            "status": self.status,
            "result_message": self.result_message,
            "error_code": self.error_code,
        }


@dataclass
class Bulk:
    uuid: str
    description: str
    start_time: str
    operations: list[Operation] = field(default_factory=list)

    def detailed_status(self) -> dict[str, Any]:
        return {
            "operations_list": [operation.as_json(self.uuid) for operation in self.operations],
            "user_type": ADMIN_USER_TYPE,
            "bulk_id": self.uuid,
            "description": self.description,
            "start_time": self.start_time,
            "user_id": 1,
            "operation_count": len(self.operations),
        }

    def status(self) -> dict[str, Any]:
        summary = self.detailed_status()
        summary["operations_list"] = [
            {"id": op.id, "status": op.status, "result_message": op.result_message, "error_code": op.error_code}
            for op in self.operations
        ]
        return summary


class BulkQueue:
    """One store's bulks; `lock` is the store's, held only while operations change state."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._bulks: dict[str, Bulk] = {}
        self._next_operation_id = 1

    def schedule(
        self, topic: str, requests: list[dict[str, Any]], run: OperationRunner, delay_s: float, now: float
    ) -> dict[str, Any]:
        bulk = Bulk(uuid=str(uuid.uuid4()), description=f"Topic {topic}", start_time=magento_datetime(now))
        with self._lock:
            for parameters in requests:
                bulk.operations.append(Operation(self._next_operation_id, topic, parameters))
                self._next_operation_id += 1
            self._bulks[bulk.uuid] = bulk
        timer = threading.Timer(delay_s, self._consume, args=(bulk, run))
        timer.daemon = True
        timer.start()
        return {
            "bulk_uuid": bulk.uuid,
            "request_items": [{"id": index, "data_hash": None, "status": "accepted"} for index in range(len(requests))],
            "errors": False,
        }

    def _consume(self, bulk: Bulk, run: OperationRunner) -> None:
        for operation in bulk.operations:
            outcome: tuple[int, str | None, str, int | None]
            try:
                result = run(operation.parameters)
            except MagentoError as error:
                outcome = (NOT_RETRIABLY_FAILED, None, error.message, 0)
            except Exception as error:  # the consumer marks anything unexpected retriable
                outcome = (RETRIABLY_FAILED, None, f"{type(error).__name__}: {error}", 0)
            else:
                outcome = (COMPLETE, json.dumps(result), "", None)
            with self._lock:
                operation.status, operation.result_serialized_data, operation.result_message, operation.error_code = (
                    outcome
                )

    def find(self, bulk_uuid: str) -> Bulk:
        with self._lock:
            bulk = self._bulks.get(bulk_uuid)
        if bulk is None:
            raise MagentoError(404, "Bulk uuid %bulkUuid not exist", {"bulkUuid": bulk_uuid})
        return bulk

    def view(self, bulk_uuid: str, detailed: bool) -> dict[str, Any]:
        bulk = self.find(bulk_uuid)
        with self._lock:
            return bulk.detailed_status() if detailed else bulk.status()
