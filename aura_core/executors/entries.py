"""The normalised log entries every agent's output is turned into, and the JSONL parser base.

One model for all agents, so the board, `aura run --no-tui` and `aura session show` render any
agent the same way. Entries are derived from the raw lines (which are stored as received), so a
parser fix re-renders old sessions. Normalisers emit `EntryPatch`es: "append entry N" or "replace
entry N" (a streaming message grows in place, a tool call's status is updated in place by id).

This is the hot path of every run (100k-line sessions are normal), so entries are slotted
dataclasses, not pydantic, and a patch holds the live entry object: serialise it when you use it.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

# ---- kinds and statuses -------------------------------------------------------------------------

USER_MESSAGE = "user_message"
ASSISTANT_MESSAGE = "assistant_message"
THINKING = "thinking"
TOOL_USE = "tool_use"
SYSTEM_MESSAGE = "system_message"
ERROR_MESSAGE = "error_message"
TOKEN_USAGE = "token_usage"
RAW = "raw"

CREATED = "created"
SUCCESS = "success"
FAILED = "failed"
DENIED = "denied"
PENDING_APPROVAL = "pending_approval"
TIMED_OUT = "timed_out"
TOOL_STATUSES = (CREATED, SUCCESS, FAILED, DENIED, PENDING_APPROVAL, TIMED_OUT)

NOT_INSTALLED: Final = "not_installed"
NOT_LOGGED_IN: Final = "not_logged_in"
NO_API_KEY: Final = "no_api_key"
SetupKind = Literal["not_installed", "not_logged_in", "no_api_key"]


# ---- text that grows in place -------------------------------------------------------------------


class _Streamed:
    """Text kept as chunks and joined when read: growing by `+=` on an attribute is quadratic."""

    __slots__ = ("_parts",)
    kind: ClassVar[str] = ""

    def __init__(self, text: str = "") -> None:
        self._parts: list[str] = [text] if text else []

    @property
    def text(self) -> str:
        parts = self._parts
        if len(parts) > 1:
            joined = "".join(parts)
            parts.clear()
            parts.append(joined)
            return joined
        return parts[0] if parts else ""

    @text.setter
    def text(self, value: str) -> None:
        self._parts = [value] if value else []

    def add(self, chunk: str) -> None:
        if chunk:
            self._parts.append(chunk)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.text == other.text

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(text={self.text!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text}


class AssistantMessage(_Streamed):
    """What the agent says; streams (grows in place) when the agent streams deltas."""

    __slots__ = ()
    kind: ClassVar[str] = ASSISTANT_MESSAGE


class Thinking(_Streamed):
    """The agent's reasoning, where the agent shows it."""

    __slots__ = ()
    kind: ClassVar[str] = THINKING


# ---- plain entries ------------------------------------------------------------------------------


@dataclass(slots=True)
class UserMessage:
    text: str
    kind: ClassVar[str] = USER_MESSAGE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text}


@dataclass(slots=True)
class SystemMessage:
    text: str
    kind: ClassVar[str] = SYSTEM_MESSAGE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text}


@dataclass(slots=True)
class ErrorMessage:
    """An error; `setup_required` says when the fix is setup (install, log in, set a key)."""

    text: str
    setup_required: SetupKind | None = None
    kind: ClassVar[str] = ERROR_MESSAGE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "setup_required": self.setup_required}


@dataclass(slots=True)
class TokenUsage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    context_window: int | None = None
    model: str | None = None
    kind: ClassVar[str] = TOKEN_USAGE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **_fields(self)}


@dataclass(slots=True)
class Raw:
    """A line no parser understood, kept as is (cut to `RAW_KEEP` chars; the store has it all)."""

    text: str
    stream: str = "stdout"
    length: int | None = None  # the original length when `text` was cut
    kind: ClassVar[str] = RAW

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "stream": self.stream, "length": self.length}


# ---- tool calls ---------------------------------------------------------------------------------


@dataclass(slots=True)
class FileRead:
    path: str
    type: ClassVar[str] = "file_read"


@dataclass(slots=True)
class FileEdit:
    """A file written or edited. `diff` is unified; `change` is add / update / delete if known."""

    path: str
    diff: str | None = None
    change: str | None = None
    type: ClassVar[str] = "file_edit"

    def stats(self) -> tuple[int, int]:
        """(lines added, lines removed), counted from the diff."""
        return diff_stats(self.diff) if self.diff else (0, 0)


@dataclass(slots=True)
class CommandRun:
    command: str
    exit_code: int | None = None
    output: str | None = None
    type: ClassVar[str] = "command_run"


@dataclass(slots=True)
class Search:
    query: str
    type: ClassVar[str] = "search"


@dataclass(slots=True)
class WebFetch:
    url: str
    type: ClassVar[str] = "web_fetch"


@dataclass(slots=True)
class Generic:
    name: str
    args: Any = None
    result: Any = None
    type: ClassVar[str] = "generic"


@dataclass(slots=True)
class Plan:
    text: str
    type: ClassVar[str] = "plan"


@dataclass(slots=True)
class TodoItem:
    text: str
    status: str = "pending"  # pending / in_progress / completed


@dataclass(slots=True)
class Todo:
    items: list[TodoItem] = field(default_factory=list)
    type: ClassVar[str] = "todo"


@dataclass(slots=True)
class Subtask:
    description: str
    prompt: str | None = None
    agent: str | None = None
    result: str | None = None
    type: ClassVar[str] = "subtask"


Action = FileRead | FileEdit | CommandRun | Search | WebFetch | Generic | Plan | Todo | Subtask
ACTION_TYPES: dict[str, type] = {
    c.type: c
    for c in (FileRead, FileEdit, CommandRun, Search, WebFetch, Generic, Plan, Todo, Subtask)
}


@dataclass(slots=True)
class ToolUse:
    """One tool call; its status and result are updated in place, found by `tool_id`."""

    tool_id: str
    tool_name: str
    action: Action
    status: str = CREATED
    parent_id: str | None = None  # the sub-agent task it ran under, if any
    kind: ClassVar[str] = TOOL_USE

    def to_dict(self) -> dict[str, Any]:
        action = {"type": self.action.type, **_fields(self.action)}
        if isinstance(self.action, Todo):
            action["items"] = [_fields(i) for i in self.action.items]
        return {
            "kind": self.kind,
            "tool_id": self.tool_id,
            "tool_name": self.tool_name,
            "status": self.status,
            "parent_id": self.parent_id,
            "action": action,
        }


Entry = (
    UserMessage
    | AssistantMessage
    | Thinking
    | ToolUse
    | SystemMessage
    | ErrorMessage
    | TokenUsage
    | Raw
)


@dataclass(slots=True)
class EntryPatch:
    """Append entry `index`, or replace it. `entry` is the live object: it may change later.

    Treat patches as read-only: a streaming entry's replace patch is reused (not frozen only
    because a frozen dataclass costs three times as much to build on this hot path)."""

    op: Literal["append", "replace"]
    index: int
    entry: Entry

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "index": self.index, "entry": self.entry.to_dict()}


# ---- (de)serialisation ---------------------------------------------------------------------------

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(cls.__dataclass_fields__)
        _FIELD_NAMES[cls] = names
    return {n: getattr(obj, n) for n in names}


_KINDS: dict[str, type] = {
    c.kind: c
    for c in (
        UserMessage,
        AssistantMessage,
        Thinking,
        ToolUse,
        SystemMessage,
        ErrorMessage,
        TokenUsage,
        Raw,
    )
}


def entry_from_dict(data: dict[str, Any]) -> Entry:
    """The inverse of `to_dict`, for entries sent over a pipe or kept in JSON."""
    data = dict(data)
    cls = _KINDS[data.pop("kind")]
    if cls is ToolUse:
        adata = dict(data.pop("action"))
        acls = ACTION_TYPES[adata.pop("type")]
        if acls is Todo:
            adata["items"] = [TodoItem(**i) for i in adata.get("items", [])]
        return ToolUse(action=acls(**adata), **data)
    entry: Entry = cls(**data)
    return entry


# ---- helpers for parsers -------------------------------------------------------------------------


def unified_diff(path: str, old: str, new: str) -> str:
    """A unified diff of two texts (a snippet pair from an edit tool, or a whole file)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}" if old else "/dev/null",
        tofile=f"b/{path}",
        n=3,
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def snippet_diff(path: str, old: str, new: str) -> str:
    """A cheap unified diff of an edit tool's (old, new) snippet pair: common leading and
    trailing lines become context, the rest is removed/added. Hunk line numbers are relative to
    the snippet (its place in the file is unknown until the tool reports it). Linear time:
    difflib is far too slow for the per-line budget."""
    a = old.splitlines()
    b = new.splitlines()
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    head = [f"--- a/{path}\n" if old else "--- /dev/null\n", f"+++ b/{path}\n"]
    old_start = 1 if a else 0
    head.append(f"@@ -{old_start},{len(a)} +1,{len(b)} @@\n")
    body = [f" {line}\n" for line in a[:start]]
    body += [f"-{line}\n" for line in a[start : len(a) - end]]
    body += [f"+{line}\n" for line in b[start : len(b) - end]]
    body += [f" {line}\n" for line in a[len(a) - end :]]
    return "".join(head + body)


def diff_stats(diff: str) -> tuple[int, int]:
    added = removed = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


_SETUP_PATTERNS: tuple[tuple[re.Pattern[str], SetupKind], ...] = (
    (re.compile(r"command not found", re.I), "not_installed"),
    (re.compile(r"missing environment variable|must specify the \w*API_KEY|"
                r"api[ _-]?key (is )?(not set|missing|required)|no api key|"
                r"_API_KEY (is )?(not set|missing|required)", re.I), "no_api_key"),
    (re.compile(r"not logged in|please run /login|please log ?in|codex login|"
                r"invalid auth method|authentication[ _]failed|401 unauthorized|"
                r"invalid x-api-key|api key not valid|invalid api key|unauthenticated", re.I),
     "not_logged_in"),
)  # fmt: skip


def classify_setup(text: str) -> SetupKind | None:
    """Whether an error message means "set this agent up first" (and how)."""
    text = text[:4000]  # the cause is said early; and a huge text must not cost much
    for pattern, kind in _SETUP_PATTERNS:
        if pattern.search(text):
            return kind
    return None


# ---- plain text rendering ------------------------------------------------------------------------

STATUS_MARKS = {
    CREATED: "…",
    SUCCESS: "✓",
    FAILED: "✗",
    DENIED: "⊘",
    PENDING_APPROVAL: "?",
    TIMED_OUT: "⌛",
}
_ONE_LINE = 160


def _short(text: str, limit: int = _ONE_LINE) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_action(action: Action, tool_name: str = "") -> str:
    """One line for a tool call, without the status mark: `$ cmd (exit 0)`, `edit f (+3 -1)`."""
    if isinstance(action, CommandRun):
        code = "" if action.exit_code is None else f" (exit {action.exit_code})"
        return f"$ {_short(action.command)}{code}"
    if isinstance(action, FileEdit):
        if action.diff:
            added, removed = action.stats()
            return f"edit {action.path} (+{added} -{removed})"
        verb = {"add": "create", "delete": "delete"}.get(action.change or "", "edit")
        return f"{verb} {action.path}"
    if isinstance(action, FileRead):
        return f"read {action.path}"
    if isinstance(action, Search):
        return f"search {_short(action.query)}"
    if isinstance(action, WebFetch):
        return f"fetch {action.url}"
    if isinstance(action, Plan):
        first = action.text.strip().splitlines()[0] if action.text.strip() else ""
        return f"plan: {_short(first)}"
    if isinstance(action, Todo):
        done = sum(1 for i in action.items if i.status == "completed")
        current = next((i.text for i in action.items if i.status == "in_progress"), None)
        tail = f": {_short(current, 80)}" if current else ""
        return f"todo {done}/{len(action.items)} done{tail}"
    if isinstance(action, Subtask):
        who = f" ({action.agent})" if action.agent else ""
        return f"task{who}: {_short(action.description)}"
    args = action.args
    if isinstance(args, dict):
        arg_text = ", ".join(f"{k}={_short(str(v), 40)}" for k, v in list(args.items())[:4])
    else:
        arg_text = "" if args is None else _short(str(args), 80)
    return _short(f"{action.name or tool_name}({arg_text})")


def render_text(entry: Entry) -> str:
    """Readable plain text for one entry: tool calls on one line each, errors prefixed."""
    kind = entry.kind
    if kind == ASSISTANT_MESSAGE:
        return entry.text  # type: ignore[union-attr]
    if kind == TOOL_USE:
        assert isinstance(entry, ToolUse)
        mark = STATUS_MARKS.get(entry.status, "·")
        line = f"{mark} {describe_action(entry.action, entry.tool_name)}"
        if entry.status in (DENIED, TIMED_OUT, PENDING_APPROVAL):
            line += f" [{entry.status.replace('_', ' ')}]"
        return line
    if kind == USER_MESSAGE:
        return "\n".join("> " + line for line in entry.text.splitlines() or [""])  # type: ignore[union-attr]
    if kind == THINKING:
        text = entry.text.strip()  # type: ignore[union-attr]
        return "\n".join("~ " + line for line in text.splitlines()) if text else ""
    if kind == ERROR_MESSAGE:
        assert isinstance(entry, ErrorMessage)
        hint = {
            NOT_INSTALLED: " (setup: install the agent CLI)",
            NOT_LOGGED_IN: " (setup: log in to the agent or check its API key)",
            NO_API_KEY: " (setup: set the agent's API key)",
        }.get(entry.setup_required or "", "")
        return f"error: {entry.text}{hint}"
    if kind == SYSTEM_MESSAGE:
        return f"-- {entry.text}"  # type: ignore[union-attr]
    if kind == TOKEN_USAGE:
        assert isinstance(entry, TokenUsage)
        parts = []
        if entry.input_tokens is not None:
            parts.append(f"in {entry.input_tokens:,}")
        if entry.output_tokens is not None:
            parts.append(f"out {entry.output_tokens:,}")
        if entry.cache_read_tokens:
            parts.append(f"cache read {entry.cache_read_tokens:,}")
        if entry.cache_write_tokens:
            parts.append(f"cache write {entry.cache_write_tokens:,}")
        if entry.reasoning_tokens:
            parts.append(f"reasoning {entry.reasoning_tokens:,}")
        if entry.cost_usd is not None:
            parts.append(f"${entry.cost_usd:.4f}")
        if entry.context_window:
            parts.append(f"context {entry.context_window:,}")
        return "tokens: " + " · ".join(parts) if parts else ""
    if kind == RAW:
        return entry.text  # type: ignore[union-attr]
    return str(entry)


# ---- the JSONL normaliser base -------------------------------------------------------------------

_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
MAX_JSON_LINE = 4 << 20  # longer lines are not parsed: kept as raw (the store has them whole)
RAW_KEEP = 64 << 10
MAX_STDERR_MERGE = 200  # consecutive stderr lines merged into one entry, at most
# an OSC body never holds ESC: excluding it keeps an unterminated storm linear (no backtracking)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_ERRORISH = re.compile(r"\berror\b|\bfatal\b|\bpanic\b|exception|traceback|\bfailed\b", re.I)


class JsonlNormalizer:
    """Base for agents that print one JSON event per line. Never raises.

    Subclasses implement `on_event(obj)` and call `append` / `replace` / tool helpers. Lines that
    are not JSON objects, invalid JSON and huge lines become `Raw` entries; stderr lines become
    system (or error) entries, consecutive ones merged, with `stderr_ignore` lines dropped (they
    stay in the raw log).
    """

    agent = "agent"
    stderr_ignore: ClassVar[tuple[re.Pattern[str], ...]] = ()
    # aura's own "system" lines in a conversation it drives (ACP, app-server, opencode's server):
    # shown as system messages rather than raw lines
    system_lines_as_messages: ClassVar[bool] = False

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.agent_session_id: str | None = None
        self._out: list[EntryPatch] = []
        self._tools: dict[str, int] = {}  # tool id -> entry index
        self._stderr_at: int | None = None  # index of the entry consecutive stderr lines grow
        self._stderr_lines = 0
        self._replace_cache: tuple[int, EntryPatch] | None = None
        self._line = ""  # the JSON line being handled, for `unknown()`

    # -- the Normalizer protocol ------------------------------------------------------------------
    def feed(self, stream: str, text: str) -> list[EntryPatch]:
        out = self._out = []
        try:
            if stream == "stderr":
                self.on_stderr(text)
                return out
            if stream == "system" and self.system_lines_as_messages:
                if text.strip():
                    self.on_system(text)
                return out
            if not text or len(text) > MAX_JSON_LINE or text[0] != "{":
                if not text or text.isspace():
                    return out
                if len(text) > MAX_JSON_LINE:
                    self.on_raw(stream, text)
                    return out
                if text.lstrip()[:1] != "{":
                    self.on_text(stream, text)
                    return out
                text = text.strip()
            try:
                # the C scanner json.loads ends in, without its per-call Python wrapping
                obj, end = _scan_once(text, 0)
            except (StopIteration, ValueError):
                self.on_raw(stream, text)
                return out
            if end != len(text) and not text[end:].isspace():
                self.on_raw(stream, text)  # trailing garbage after the object
                return out
            self._stderr_at = None
            self._line = text
            self.on_event(obj)
            return out
        except Exception as exc:  # a parser bug must never break a run: keep the line
            try:
                self.on_raw(stream, text)
                self.append(SystemMessage(f"aura could not parse this {self.agent} line: {exc!r}"))
            except Exception:
                pass
            return self._out

    def finish(self) -> list[EntryPatch]:
        """End of output: subclasses close what is still open (e.g. a streaming message)."""
        out = self._out = []
        try:
            self.on_finish()
        except Exception:
            pass
        return out

    # -- hooks ------------------------------------------------------------------------------
    def on_event(self, obj: dict[str, Any]) -> None:
        self.unknown()

    def unknown(self) -> None:
        """The current JSON line is an event this parser does not know: keep it as is."""
        self.on_raw("stdout", self._line)

    def on_text(self, stream: str, text: str) -> None:
        """A stdout line that is not JSON: kept raw (agents print banners, warnings)."""
        self.on_raw(stream, text)

    def on_finish(self) -> None:
        pass

    def on_system(self, text: str) -> None:
        self._stderr_at = None
        self.append(SystemMessage(text))

    def on_raw(self, stream: str, text: str) -> None:
        self._stderr_at = None
        if len(text) > RAW_KEEP:
            self.append(Raw(text[:RAW_KEEP], stream, len(text)))
        else:
            self.append(Raw(text, stream))

    def on_stderr(self, text: str) -> None:
        if len(text) > RAW_KEEP:
            text = text[:RAW_KEEP] + "…"
        line = _ANSI.sub("", text).rstrip()
        if not line.strip():
            return
        for pattern in self.stderr_ignore:
            if pattern.search(line):
                return
        at = self._stderr_at
        if at is not None and at == len(self.entries) - 1 and self._stderr_lines < MAX_STDERR_MERGE:
            old = self.entries[at]
            merged = f"{old.text}\n{line}"  # type: ignore[union-attr]
            self._stderr_lines += 1
            if isinstance(old, ErrorMessage):
                old.text = merged
                old.setup_required = old.setup_required or classify_setup(line)
                self.replace(at)
            elif _ERRORISH.search(line):
                self.entries[at] = ErrorMessage(merged, classify_setup(merged))
                self.replace(at)
            else:
                old.text = merged  # type: ignore[union-attr]
                self.replace(at)
            return
        setup = classify_setup(line)
        entry: Entry = (
            ErrorMessage(line, setup) if setup or _ERRORISH.search(line) else SystemMessage(line)
        )
        self.append(entry)
        self._stderr_at = len(self.entries) - 1
        self._stderr_lines = 1

    # -- building blocks ------------------------------------------------------------------------
    def append(self, entry: Entry) -> int:
        index = len(self.entries)
        self.entries.append(entry)
        self._out.append(EntryPatch("append", index, entry))
        return index

    def replace(self, index: int, entry: Entry | None = None) -> None:
        """Say entry `index` changed (or put `entry` there). One patch per entry per feed."""
        if entry is not None:
            self.entries[index] = entry
        else:
            entry = self.entries[index]
        cached = self._replace_cache
        if cached is not None and cached[0] == index and cached[1].entry is entry:
            patch = cached[1]  # a streaming message reuses its patch
        else:
            patch = EntryPatch("replace", index, entry)
            self._replace_cache = (index, patch)
        out = self._out
        if not out or out[-1] is not patch:
            out.append(patch)

    def tool(self, tool_id: str) -> ToolUse | None:
        index = self._tools.get(tool_id)
        if index is None:
            return None
        entry = self.entries[index]
        return entry if isinstance(entry, ToolUse) else None

    def add_tool(self, tool: ToolUse) -> int:
        """Append a tool call, or update the one with the same id in place."""
        index = self._tools.get(tool.tool_id)
        if index is not None:
            self.replace(index, tool)
            return index
        index = self.append(tool)
        self._tools[tool.tool_id] = index
        return index

    def tool_changed(self, tool_id: str) -> None:
        index = self._tools.get(tool_id)
        if index is not None:
            self.replace(index)

    def error(self, text: str, setup: SetupKind | None = None) -> None:
        """An error entry, unless the previous error said exactly the same."""
        text = text.strip() or "unknown error"
        for entry in reversed(self.entries[-3:]):
            if isinstance(entry, ErrorMessage) and entry.text == text:
                return
        self.append(ErrorMessage(text, setup or classify_setup(text)))

    def set_session_id(self, value: Any) -> None:
        if value and isinstance(value, str) and value != self.agent_session_id:
            self.agent_session_id = value


def as_dict(value: Any) -> dict[str, Any]:
    """Agents' JSON is not trusted: a field that should be an object may be anything."""
    return value if type(value) is dict else {}


def as_list(value: Any) -> list[Any]:
    return value if type(value) is list else []


def as_str(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def as_key(value: Any) -> int | str | None:
    """A value usable as a dict key (JSON lists and objects are not hashable)."""
    return value if type(value) is int or type(value) is str else None


def to_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text_of(content: Any) -> str:
    """Text of a content value: a string, or a list of text blocks (Anthropic / MCP shape)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") in (None, "text") and isinstance(block.get("text"), str):
                    parts.append(block["text"])
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    return json.dumps(content)
