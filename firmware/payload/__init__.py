"""Payload: CBOR body sealed in an AES-CCM envelope (see docs/payload.md)."""
