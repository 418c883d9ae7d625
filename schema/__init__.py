"""Data shapes: workflow/activity contracts, database tables, API models, migrations."""
