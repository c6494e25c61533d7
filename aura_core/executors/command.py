"""The generic command executor: any program, its output kept line by line as it comes.

The prompt reaches the command in AURA_PROMPT (with --append-prompt), --var entries become
environment variables and AURA_SESSION_ID names the session.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

from aura_core.executors.base import Availability, LaunchSpec, RunRequest, SetupRequired
from aura_core.executors.process import ProcessRun, start_process

_IGNORED = ("yolo", "force", "trust", "allow_all_tools")


class CommandExecutor:
    name = "custom"
    binary: str | None = None
    install_hint = "pass --base-command CMD (and --param ARG for each argument)"

    def availability(self, override: str | None = None) -> Availability:
        return Availability(
            name=self.name,
            found=True,
            note="runs the command given by --base-command; --openai-endpoint for HTTP models",
        )

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        base = request.options.base_command
        if not base:
            raise SetupRequired(
                "custom needs --base-command CMD (a command to run) or --openai-endpoint URL"
            )
        try:
            argv = shlex.split(base)
        except ValueError as exc:
            raise SetupRequired(
                f"--base-command could not be split like a shell would: {exc}"
            ) from None
        if not argv:
            raise SetupRequired("--base-command is empty: give the program to run")
        if request.executable:
            argv[0] = request.executable
        if "/" not in argv[0] and shutil.which(argv[0]) is None:
            raise SetupRequired(
                f"command '{argv[0]}' not found on PATH: install it or give its full path"
            )
        argv += request.options.params
        warnings = [
            f"--{opt.replace('_', '-')} means nothing to the custom command executor; ignored"
            for opt in _IGNORED
            if getattr(request.options, opt)
        ]
        if request.options.auto_approve is not None:
            warnings.append("--auto-approve means nothing to the custom command executor; ignored")
        if request.model:
            warnings.append("--model means nothing to the custom command executor; ignored")
        env = {
            **request.options.vars,
            "AURA_PROMPT": request.full_prompt,
            "AURA_SESSION_ID": request.session_id,
            "AURA_RUN_MODE": request.mode.value,
        }
        if request.resume_id:
            env["AURA_RESUME_ID"] = request.resume_id
        return LaunchSpec(argv=argv, env=env, warnings=warnings)

    def start(self, request: RunRequest) -> ProcessRun:
        spec = self.build_launch(request)
        return start_process(spec, Path(request.cwd), request.env)

    def normalizer(self) -> None:
        return None  # plain output: shown and stored as raw lines


class ConfiguredAgent(CommandExecutor):
    """An agent the user defined in the config: `[executors.NAME] command = "..."`.

    Its output is kept as plain lines; the prompt goes as the last argument (`prompt = "arg"`),
    on stdin then EOF (`"stdin"`), or only in AURA_PROMPT (`"env"`, always set too).
    """

    def __init__(self, name: str, section: Any) -> None:
        self.name = name
        self.section = section
        self.install_hint = f"fix `command` under [executors.{name}] in the config"

    def availability(self, override: str | None = None) -> Availability:
        argv = shlex.split(self.section.command or "")
        program = override or self.section.path or (argv[0] if argv else "")
        found = shutil.which(program) if program else None
        return Availability(
            name=self.name,
            found=bool(found),
            path=found,
            override=override or self.section.path,
            missing=[] if found else [f"command '{program}' not found on PATH"],
            note=f"defined in the config: {self.section.command}",
        )

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        from dataclasses import replace

        command = self.section.command
        if self.section.args:
            command += " " + shlex.join(self.section.args)
        options = replace(request.options, base_command=command)
        executable = request.executable or self.section.path
        spec = super().build_launch(replace(request, options=options, executable=executable))
        spec.env.update(self.section.env)
        spec.warnings = [w.replace("the custom command executor", self.name) for w in spec.warnings]
        if self.section.prompt == "arg":
            spec.argv.append(request.full_prompt)
        elif self.section.prompt == "stdin":
            spec.stdin = request.full_prompt.encode()
        return spec
