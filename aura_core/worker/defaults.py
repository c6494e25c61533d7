"""The protocol's default numbers, stdlib-free so `aura --help` can show them without pydantic."""

DEFAULT_PORT = 7433
HEARTBEAT_INTERVAL_S = 5.0
OFFLINE_AFTER_S = 15.0
MAX_MESSAGE_BYTES = 16 << 20  # a log line may be 8 MiB (process.MAX_LINE) before JSON escaping
