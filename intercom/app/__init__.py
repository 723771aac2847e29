"""The doorbell state machine and settings."""
