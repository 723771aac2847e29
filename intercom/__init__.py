"""intercom: a SIP door intercom for the Raspberry Pi."""

__version__ = "0.1.0"
