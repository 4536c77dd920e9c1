"""The daemon's HTTP server: JSON API, web timeline, metrics and push-source intake.

One module per resource (``events``, ``sources``, ``ops``, ...), each with its
own route table; ``server.py`` mounts them and applies auth and limits.
"""
