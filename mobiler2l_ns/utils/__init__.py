"""Shared helpers: offline metrics, torch compatibility, logging."""
