"""Hardware adapters behind small Protocols, with fakes."""
