"""Everything that starts, signals, updates or queries the orders' workflows, in rooms named
for their users:

    api/        the HTTP API for backend services, providers and staff (FastAPI)
    console/    the web console for operators and support
    customer/   the pages a customer opens from a link in a message (no account)
    cli.py      `orderflow`, the command line for staff
    client.py   the Python client for backend services
    services/   the order services all of them share: intake, reading and search, actions
                (typed workflow updates), provider events, feedback, access and audit
"""
