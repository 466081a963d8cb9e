"""The workbench's saved cases: one SQLite file (the only module that imports sqlite3), and case zips."""
