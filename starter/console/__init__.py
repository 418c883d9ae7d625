"""The web console for operators and support: server-rendered pages, plain forms, no build."""

from starter.console.routes import install, router

__all__ = ["install", "router"]
