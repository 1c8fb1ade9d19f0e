"""One model per real sensor part, speaking its datasheet protocol."""
