"""Processes at the edge: ingest, the projector loop, the CLI, log adapters."""
