"""Utilities: events, distributed helpers, logging, visualisation."""
