"""Sans-IO SIP: messages, transactions, dialogs, digest auth, registration and calls.

Nothing here opens a socket, reads a clock or draws randomness it was not handed.
"""
