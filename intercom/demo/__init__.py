"""``intercom demo``: the stand-ins that let a newcomer see a whole doorbell call on one machine.

A loopback PBX (registrar and record-routing proxy), a simulated phone, and the SIP ladder drawn
from what the PBX relays. The daemon never imports this package.
"""
