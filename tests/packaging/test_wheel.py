"""The wheel as a user gets it: built, installed into a fresh venv far from the source tree, run.

The editable install used for development hides packaging mistakes (a package missing from
pyproject.toml, styles not shipped): everything imports from the checkout anyway. So this builds
the wheel from a copy of the tree, installs it with its dependencies from the package index as pip
is configured on this machine, and runs `aura` from a folder outside the tree, including the board
under tmux.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aura_core import __version__

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = ("aura_core", "aura_tui")
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".npm-tools", "node_modules", "__pycache__", "*.egg-info", "build", "dist",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "tests", "benchmarks",
    "snapshots",
)  # fmt: skip


def _setuptools() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table: dict[str, object] = data["tool"]["setuptools"]
    return table


def source_packages() -> dict[str, Path]:
    """Every package of the source tree (a folder with __init__.py), dotted name -> folder."""
    found: dict[str, Path] = {}
    for top in PACKAGE_ROOTS:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT)
            if "__pycache__" in rel.parts:
                continue
            found[".".join(rel.parts)] = init.parent
    package_dir = _setuptools().get("package-dir") or {}
    assert isinstance(package_dir, dict)
    for name, folder in package_dir.items():
        if name:  # e.g. aura_tui.styles = "styles"
            for init in sorted((ROOT / folder).rglob("__init__.py")):
                rel = init.parent.relative_to(ROOT / folder)
                found[".".join([name, *rel.parts])] = init.parent
    return found


def test_pyproject_lists_every_package() -> None:
    listed = _setuptools()["packages"]
    assert isinstance(listed, list)
    found = source_packages()
    missing = sorted(set(found) - set(listed))
    stale = sorted(set(listed) - set(found))
    assert not missing, f"add to [tool.setuptools].packages in pyproject.toml: {missing}"
    assert not stale, f"listed in pyproject.toml but not a package in the tree: {stale}"


def test_package_data_ships_the_styles() -> None:
    package_data = _setuptools()["package-data"]
    assert isinstance(package_data, dict)
    assert "*.tcss" in package_data["aura_tui.styles"]
    assert list((ROOT / "styles").glob("*.tcss")), "no .tcss files in styles/"


# ---- the built wheel, installed -----------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    venv: Path
    site: Path  # the venv's site-packages
    outside: Path  # a folder outside the source tree to run from
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            cwd=self.outside,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _check(cmd: list[str], timeout: float, **kw: object) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    assert res.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")):  # fmt: skip
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["AURA_HOME"] = str(home / "aura-data")
    env.pop("AURA_CONFIG_DIR", None)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT), "the temp folder must be outside the tree"
    src, dist, venv, outside = base / "src", base / "dist", base / "venv", base / "outside"
    outside.mkdir()
    # build from a copy: an in-tree build leaves build/ behind, whose stale files end up in
    # later wheels
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE, symlinks=True)
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _check(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        600,
        env=pip_env,
        cwd=base,
    )
    wheels = list(dist.glob("aura_board-*.whl"))
    assert len(wheels) == 1, wheels
    _check([sys.executable, "-m", "venv", str(venv)], 300, env=pip_env, cwd=base)
    python = str(venv / "bin" / "python")
    _check([python, "-m", "pip", "install", "-q", str(wheels[0])], 900, env=pip_env, cwd=base)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, cwd=outside, env=pip_env,
    ).stdout.strip()  # fmt: skip
    env = _clean_env(base / "home")
    env["HOME"] = str(base / "home")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    yield Installed(venv=venv, site=Path(site), outside=outside, env=env)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_installed_wheel_runs_outside_the_tree(installed: Installed) -> None:
    version = installed.run(installed.bin("aura"), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"aura {__version__}"

    module = installed.run(installed.bin("python"), "-m", "aura_tui", "--version")
    assert module.returncode == 0, module.stderr
    assert module.stdout.strip() == f"aura {__version__}"

    where = installed.run(
        installed.bin("python"), "-c", "import aura_core, aura_tui; print(aura_core.__file__); "
        "print(aura_tui.__file__)",
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed.site), f"imported from {line}, not the wheel"

    doctor = installed.run(installed.bin("aura"), "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert "executors ready" in doctor.stdout and "Traceback" not in doctor.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_wheel_ships_every_module_and_style(installed: Installed) -> None:
    styles = {p.name for p in (ROOT / "styles").glob("*.tcss")}
    shipped = {p.name for p in (installed.site / "aura_tui" / "styles").glob("*.tcss")}
    assert styles and shipped == styles
    missing = []
    for name, folder in source_packages().items():
        target = installed.site.joinpath(*name.split("."))
        for module in folder.glob("*.py"):
            if not (target / module.name).is_file():
                missing.append(f"{name}/{module.name}")
    assert not missing, f"not in the wheel: {missing}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_board_opens_and_quits_under_tmux(installed: Installed) -> None:
    tmux = shutil.which("tmux")
    assert tmux is not None, "tmux is needed for this test (./dev test installs it)"
    socket = f"aura-wheel-{os.getpid()}"
    exit_file = installed.outside / "tui-exit-code"
    # the pane outlives aura by a while, so a crash stays readable in capture-pane
    command = f"{installed.bin('aura')} tui; echo $? > {exit_file}; sleep 60"

    def tmux_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tmux, "-L", socket, "-f", "/dev/null", *args],
            capture_output=True, text=True, timeout=30, env=installed.env,
            cwd=installed.outside,
        )  # fmt: skip

    started = tmux_run("new-session", "-d", "-s", "aura", "-x", "120", "-y", "36", command)
    assert started.returncode == 0, started.stderr
    try:
        screen = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = tmux_run("capture-pane", "-p", "-t", "aura").stdout
            if ("AURA" in screen and "Backlog" in screen) or _read(exit_file):
                break
            time.sleep(0.3)
        assert "AURA" in screen and "Backlog" in screen, f"the board never showed:\n{screen}"
        assert "Traceback" not in screen
        tmux_run("send-keys", "-t", "aura", "q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _read(exit_file):
            time.sleep(0.2)
        assert _read(exit_file), (
            "aura tui did not exit after q:\n" + tmux_run("capture-pane", "-p", "-t", "aura").stdout
        )
        assert _read(exit_file) == "0"
    finally:
        tmux_run("kill-server")
