"""Snapshots: manifest, writer (COPY), reader, publishing, schedule, HTTP serving and fetching."""
