"""The HTTP API's routes, one module per resource; each route is thin over `starter.services`."""
