"""Order services shared by the API, the console and the customer pages: keyword-only
functions over a database session and the orders' workflows, raising the named errors of
`errors.py` (never HTTP: each room turns them into its own answer)."""
