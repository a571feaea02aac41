"""The sandbox's own control endpoints under /_sandbox (never part of a provider contract).

GET/POST/DELETE /_sandbox/faults     read / set {"mode", "count"?, "path_prefix"?} / clear the fault switch
GET/DELETE      /_sandbox/requests   read / reset per-path request counts
GET/POST/DELETE /_sandbox/bad_rows   read / set {"kinds": [...]} / clear the bad rows added to answers
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.faults import CONTROL_PREFIX
from sandbox.state import Fault, SandboxState


def admin_routes(state: SandboxState) -> list[BaseRoute]:
    """Routes to drive ``state`` over HTTP (for the demo, the CLI and out-of-process tests)."""

    def fault_body(fault: Fault | None) -> dict[str, Any]:
        if fault is None:
            return {"fault": None}
        return {"fault": {"mode": fault.mode, "remaining": fault.remaining, "path_prefix": fault.path_prefix}}

    async def faults(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            state.clear_fault()
        elif request.method == "POST":
            try:
                spec = json.loads(await request.body())
                if not isinstance(spec, dict):
                    raise ValueError("body must be a JSON object")
                count = spec.get("count")
                if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
                    raise ValueError("count must be an integer or null")
                state.set_fault(str(spec.get("mode")), count, str(spec.get("path_prefix") or "/data/v1"))
            except ValueError as error:  # includes JSONDecodeError
                return JSONResponse(
                    {"error": "invalid_fault", "error_description": str(error)}, status_code=400
                )
        return JSONResponse(fault_body(state.fault))

    async def requests(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            state.reset_request_counts()
        return JSONResponse({"requests": state.request_counts})

    async def bad_rows(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            state.set_bad_rows(())
        elif request.method == "POST":
            try:
                spec = json.loads(await request.body())
                if not isinstance(spec, dict) or not isinstance(spec.get("kinds"), list):
                    raise ValueError('body must be {"kinds": [...]}')
                state.set_bad_rows(str(kind) for kind in spec["kinds"])
            except ValueError as error:
                return JSONResponse(
                    {"error": "invalid_bad_rows", "error_description": str(error)}, status_code=400
                )
        return JSONResponse({"kinds": sorted(state.bad_rows)})

    return [
        Route(f"{CONTROL_PREFIX}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{CONTROL_PREFIX}/bad_rows", bad_rows, methods=["GET", "POST", "DELETE"]),
        Route(f"{CONTROL_PREFIX}/requests", requests, methods=["GET", "DELETE"]),
    ]
