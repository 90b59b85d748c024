"""Local stand-ins for the providers Kanri talks to, for development only.

`make run` (`manage.py run_kanri`) starts them on loopback when DEBUG is on and the
settings point at this machine; the test suite and the benchmark start the same ones.
They need the dev dependencies (localstripe, aiohttp) and are never imported by
production code paths.
"""
