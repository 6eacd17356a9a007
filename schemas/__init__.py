"""JSON Schemas of every event and file format (installed as worker.schema_files)."""
