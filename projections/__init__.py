"""Read models rebuilt from the event log, each stored with its tracking position."""
