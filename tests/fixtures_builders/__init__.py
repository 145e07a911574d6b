"""Builders of model repositories for tests (never imported by the app)."""
