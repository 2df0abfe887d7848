"""Database access shared by duetime's SQL adapters: engine, tables, migrations."""
