"""Inbound webhooks from channels: per kind, verify the signature and parse the body into the
small dataclasses of `base.py`. Built from the channels' published payloads
(`shared/reference/samples/`), never from the sandbox's code."""
