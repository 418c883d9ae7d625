"""The pages a customer opens from a link in a message: no account, no password."""

from starter.customer.routes import router

__all__ = ["router"]
