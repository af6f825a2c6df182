"""`hv`: the hypervisor command line, a client of the HTTP API and nothing else.

It imports nothing from the server's Django apps: everything it knows comes over HTTP.
"""
