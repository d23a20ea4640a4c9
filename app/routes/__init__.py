"""HTTP blueprints: `live` (the four live endpoints and session state) and `ops` (health, metrics)."""
