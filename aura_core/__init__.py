"""AURA core: headless orchestration of coding-agent CLIs. Never imports textual."""

__version__ = "0.1.0"
