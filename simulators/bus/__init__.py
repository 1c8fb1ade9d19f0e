"""Virtual buses between the node's `machine` module and the part models."""
