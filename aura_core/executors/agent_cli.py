"""What the agent-CLI adapters (claude, codex, gemini, ...) share: finding the binary, checking
what is missing, the permission levels, and starting the process.

Each adapter is data plus two methods: `build_launch` (argv, env, warnings for a RunRequest) and
`normalizer` (a fresh parser of its output). Everything here is cheap: nothing runs the agent
except `availability()`, which asks the binary for its version with a short timeout.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from aura_core.executors.base import (
    Availability,
    LaunchSpec,
    RunMode,
    RunOptions,
    RunRequest,
    SetupRequired,
)
from aura_core.executors.versions import remembered_version

if TYPE_CHECKING:
    from aura_core.executors.process import ProcessRun

VERSION_TIMEOUT_S = 10.0  # gemini takes ~2.5 s to print its version on a small machine
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.]+)?")


class Level(IntEnum):
    """How much an agent may do without asking. Headless agents cannot ask, so whatever needs
    approval above the level is refused by the agent itself."""

    read_only = 0  # review passes, --auto-approve false: may read, not edit or run
    workspace = 1  # the default: edit files and run commands in its working directory
    all_tools = 2  # --force / --allow-all-tools / --auto-approve true: every tool, guards kept
    yolo = 3  # --yolo: every guard removed (no sandbox, no permission checks)


def permission_level(request: RunRequest) -> Level:
    o = request.options
    if o.yolo:
        return Level.yolo
    if o.force or o.allow_all_tools or o.auto_approve is True:
        return Level.all_tools
    if request.mode == RunMode.review or o.auto_approve is False:
        return Level.read_only
    return Level.workspace


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class CliAgent:
    """Base of the process-backed agent adapters; subclasses fill the class data."""

    name: ClassVar[str] = ""
    binary: ClassVar[str] = ""
    npm_package: ClassVar[str] = ""
    key_env: ClassVar[tuple[str, ...]] = ()  # any one of these set means a key is there
    login_hint: ClassVar[str] = ""
    # the agent can ask before a tool runs (a protocol aura answers): supervised mode works
    asks_permissions: ClassVar[bool] = False

    @property
    def install_hint(self) -> str:
        return f"npm install -g {self.npm_package}"

    # -- finding the program ------------------------------------------------------------------
    def find_binary(self, override: str | None = None) -> str | None:
        """--executor-path (a file, a folder holding the binary, or a name on PATH), then PATH."""
        if override:
            path = Path(override).expanduser()
            if path.is_dir():
                for candidate in (path / self.binary, path / "node_modules" / ".bin" / self.binary):
                    if candidate.is_file() and os.access(candidate, os.X_OK):
                        return str(candidate)
                return None
            if path.is_file():
                return str(path) if os.access(path, os.X_OK) else None
            if os.sep in override:
                return None
            return shutil.which(override)
        return shutil.which(self.binary)

    def program(self, request: RunRequest) -> list[str]:
        """The argv prefix: --base-command (e.g. `npx -y pkg@1.2.3`), --executor-path, or PATH."""
        base = request.options.base_command
        if base:
            try:
                argv = shlex.split(base)
            except ValueError as exc:
                raise SetupRequired(f"--base-command could not be split: {exc}") from None
            if argv:
                return argv
        found = self.find_binary(request.executable)
        if found is None:
            where = f" at {request.executable}" if request.executable else " on PATH"
            raise SetupRequired(
                f"{self.name}: `{self.binary}` not found{where}; install it with "
                f"`{self.install_hint}` or pass --executor-path {self.name}=PATH"
            )
        return [found]

    # -- availability ---------------------------------------------------------------------------
    def availability(self, override: str | None = None) -> Availability:
        path = self.find_binary(override)
        if path is None:
            where = f"not found at {override}" if override else f"`{self.binary}` not on PATH"
            return Availability(
                name=self.name,
                found=False,
                override=override,
                missing=[f"install: {self.install_hint}"],
                note=where,
            )
        version = remembered_version(path, self.version)
        missing = [] if self.has_credentials() else [self.login_hint]
        return Availability(
            name=self.name,
            found=True,
            path=path,
            version=version,
            override=override,
            missing=missing,
            note=None if version else "could not read its version",
        )

    @staticmethod
    def version(path: str, timeout: float = VERSION_TIMEOUT_S) -> str | None:
        try:
            proc = subprocess.run(
                [path, "--version"],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        match = _VERSION.search(proc.stdout + " " + proc.stderr)
        return match.group(0) if match else None

    def has_credentials(self) -> bool:
        """A key in the environment or a login on disk; subclasses add their login files."""
        return any(os.environ.get(k, "").strip() for k in self.key_env)

    # -- launching ---------------------------------------------------------------------------------
    def build_launch(self, request: RunRequest) -> LaunchSpec:
        raise NotImplementedError

    def start(self, request: RunRequest) -> ProcessRun:
        from aura_core.executors.process import start_process

        return start_process(self.build_launch(request), Path(request.cwd), request.env)

    def base_env(self, request: RunRequest) -> dict[str, str]:
        """--var entries, plus what every agent child gets (custom wrappers read these)."""
        return {
            **request.options.vars,
            "AURA_PROMPT": request.full_prompt,
            "AURA_SESSION_ID": request.session_id,
        }

    def common_warnings(self, options: RunOptions, *, endpoint_ok: bool = False) -> list[str]:
        """Options no CLI agent adapter uses."""
        out = []
        if options.openai_endpoint and not endpoint_ok:
            out.append(f"--openai-endpoint means nothing to {self.name}; ignored")
        if options.refresh_model_cache:
            out.append(f"--refresh-model-cache means nothing to {self.name}; ignored")
        if options.auto_approve is False and options.approver and not self.asks_permissions:
            out.append(
                f"{self.name} cannot ask before a tool runs: supervised mode runs it read-only "
                "(claude, codex, opencode, qwen-code and copilot can ask)"
            )
        return out
