"""The pages a customer opens from a link in a message: no account, no password."""

from starter.customer.routes import install, router

__all__ = ["install", "router"]
