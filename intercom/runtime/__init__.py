"""asyncio runtime: sockets, timers and the wiring of the sans-IO cores."""
