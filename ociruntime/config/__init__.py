"""The bundle's config.json: schema + fast validator (validate.py), typed model (model.py), defaults (default.py)."""
