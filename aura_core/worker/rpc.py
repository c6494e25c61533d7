"""A symmetric JSON-RPC 2.0 peer over one websockets connection: both ends send requests.

The reader handles notifications inline, in order (log lines must stay in seq order), and runs
requests as tasks so a slow one (starting an agent) never stalls the stream behind it. Errors
follow the JSON-RPC spec: a reply is sent for every bad request that carries an id (and with id
null when the id cannot be read), never for a notification, and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from aura_core.worker.protocol import (
    JSONRPC,
    PARAMS,
    ConnectionLost,
    ErrorCode,
    RpcError,
)

log = logging.getLogger("aura.worker.rpc")

Handler = Callable[[Any], Awaitable[Any]]
Guard = Callable[[str], None]  # raises RpcError to refuse a method (e.g. before worker.hello)
_ID_TYPES = (int, str)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=False)
    return value


def _error_reply(id_: Any, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": id_, "error": exc.to_obj()}


@functools.cache
def _envelope(method: str, model: type[BaseModel]) -> type[BaseModel]:
    """A model of a whole notification of `method`, for pydantic's one-pass JSON validation."""
    fields: dict[str, Any] = {
        "jsonrpc": (Literal["2.0"], ...),
        "method": (Literal[method], ...),
        "params": (model, ...),
    }
    return create_model(
        f"{model.__name__}Notification", __config__=ConfigDict(extra="forbid"), **fields
    )


def _validation_data(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]}
        for err in exc.errors(include_url=False)[:8]
    ]


class RpcPeer:
    def __init__(
        self,
        ws: Connection,
        handlers: Mapping[str, Handler],
        *,
        max_message_bytes: int,
        guard: Guard | None = None,
        name: str = "peer",
        fast: tuple[str, ...] = (),
    ) -> None:
        """`fast`: notification methods parsed and validated in one pass (pydantic's JSON
        parser) when they arrive as this module sends them; anything else takes the general
        path, which also produces the errors."""
        self.ws = ws
        self.handlers = handlers
        self.max_message_bytes = max_message_bytes
        self.guard = guard
        self.name = name
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self._fast = [
            (f'{{"jsonrpc":"2.0","method":"{m}","params":'.encode(), m, _envelope(m, PARAMS[m]))
            for m in fast
        ]

    # ---- sending ----------------------------------------------------------------------------
    async def send_obj(self, obj: Any) -> None:
        await self.ws.send(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    async def notify(self, method: str, params: BaseModel | dict[str, Any]) -> None:
        await self.send_obj({"jsonrpc": JSONRPC, "method": method, "params": _dump(params)})

    async def request(
        self, method: str, params: BaseModel | dict[str, Any], timeout: float = 30.0
    ) -> Any:
        """Send a request and wait for its result; RpcError on an error reply."""
        if self.closed:
            raise ConnectionLost(f"connection to {self.name} is closed")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await self.send_obj(
                {"jsonrpc": JSONRPC, "id": req_id, "method": method, "params": _dump(params)}
            )
            return await asyncio.wait_for(fut, timeout)
        except ConnectionClosed as exc:
            raise ConnectionLost(f"connection to {self.name} closed: {exc}") from None
        finally:
            self._pending.pop(req_id, None)

    # ---- receiving --------------------------------------------------------------------------
    async def run(self) -> None:
        """Read and dispatch until the connection closes; then fail every pending request."""
        try:
            while True:
                try:
                    raw = await self.ws.recv(decode=False)
                except ConnectionClosed:
                    return
                reply = await self.dispatch(raw)
                if reply is not None:
                    try:
                        await self.send_obj(reply)
                    except ConnectionClosed:
                        return
        finally:
            self.closed = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionLost(f"connection to {self.name} closed"))
            for task in list(self._tasks):
                task.cancel()

    async def dispatch(self, raw: bytes) -> Any:
        """One received message -> the reply to send now (None when there is none yet)."""
        if len(raw) > self.max_message_bytes:
            return _error_reply(
                None,
                RpcError(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    f"message of {len(raw)} bytes is over the limit of {self.max_message_bytes}",
                ),
            )
        for prefix, method, envelope in self._fast:
            if raw.startswith(prefix):
                try:
                    value = envelope.model_validate_json(raw)
                except ValidationError:
                    break
                await self._notification(method, {}, getattr(value, "params"))  # noqa: B009
                return None
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: JSON nested too deep; still a parse error, the connection stays
            return _error_reply(None, RpcError(ErrorCode.PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(obj, list):
            if not obj:
                return _error_reply(
                    None, RpcError(ErrorCode.INVALID_REQUEST, "invalid request: empty batch")
                )
            replies = []
            for item in obj:
                reply = await self._one(item, in_batch=True)
                if reply is not None:
                    replies.append(reply)
            return replies or None
        return await self._one(obj, in_batch=False)

    async def _one(self, obj: Any, *, in_batch: bool) -> dict[str, Any] | None:
        if not isinstance(obj, dict):
            return _error_reply(
                None, RpcError(ErrorCode.INVALID_REQUEST, "invalid request: not an object")
            )
        has_id = "id" in obj
        id_ = obj.get("id")
        if has_id and id_ is not None and (isinstance(id_, bool) or not isinstance(id_, _ID_TYPES)):
            return _error_reply(
                None, RpcError(ErrorCode.INVALID_REQUEST, "invalid request: bad id type")
            )
        if obj.get("jsonrpc") != JSONRPC:
            return _error_reply(
                id_, RpcError(ErrorCode.INVALID_REQUEST, 'invalid request: jsonrpc must be "2.0"')
            )
        method = obj.get("method")
        if method is None and has_id and ("result" in obj or "error" in obj):
            self._resolve(id_, obj)
            return None
        if not isinstance(method, str):
            return _error_reply(
                id_, RpcError(ErrorCode.INVALID_REQUEST, "invalid request: method must be a string")
            )
        params = obj.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            err = RpcError(ErrorCode.INVALID_PARAMS, "invalid params: give params as an object")
            return _error_reply(id_, err) if has_id else None
        if not has_id:
            await self._notification(method, params)
            return None
        if in_batch:
            return await self._call(id_, method, params)
        task = asyncio.ensure_future(self._call_and_reply(id_, method, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    def _resolve(self, id_: Any, obj: dict[str, Any]) -> None:
        fut = self._pending.get(id_)
        if fut is None or fut.done():
            log.debug("%s: response to an unknown request id %r", self.name, id_)
            return
        if "error" in obj:
            err = obj["error"] if isinstance(obj["error"], dict) else {}
            fut.set_exception(
                RpcError(
                    int(err.get("code", ErrorCode.INTERNAL_ERROR)),
                    str(err.get("message", "error")),
                    err.get("data"),
                )
            )
        else:
            fut.set_result(obj.get("result"))

    def _validate(
        self, method: str, params: dict[str, Any], validated: Any = None
    ) -> tuple[Handler, Any]:
        handler = self.handlers.get(method)
        if handler is None:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"method not found: {method}")
        if self.guard is not None:
            self.guard(method)
        if validated is not None:
            return handler, validated
        model = PARAMS.get(method)
        if model is None:
            return handler, params
        try:
            return handler, model.model_validate(params)
        except ValidationError as exc:
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"invalid params for {method}",
                _validation_data(exc),
            ) from None

    async def _notification(
        self, method: str, params: dict[str, Any], validated: Any = None
    ) -> None:
        """Notifications get no reply, even when they fail (JSON-RPC 2.0, section 4.1)."""
        try:
            handler, value = self._validate(method, params, validated)
            await handler(value)
        except RpcError as exc:
            log.warning("%s: notification %s refused: %s", self.name, method, exc)
        except Exception:
            log.exception("%s: notification %s failed", self.name, method)

    async def _call(self, id_: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            handler, value = self._validate(method, params)
            result = await handler(value)
        except RpcError as exc:
            return _error_reply(id_, exc)
        except Exception as exc:
            log.exception("%s: %s failed", self.name, method)
            return _error_reply(
                id_,
                RpcError(ErrorCode.INTERNAL_ERROR, "internal error", type(exc).__name__),
            )
        return {"jsonrpc": JSONRPC, "id": id_, "result": _dump(result)}

    async def _call_and_reply(self, id_: Any, method: str, params: dict[str, Any]) -> None:
        reply = await self._call(id_, method, params)
        with contextlib.suppress(ConnectionClosed):
            await self.send_obj(reply)
