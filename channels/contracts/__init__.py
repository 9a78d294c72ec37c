"""Versioned contracts of the events syncsvc emits: JSON Schemas per (type, version), the
builders that make each event, and subscribers' version pins."""
