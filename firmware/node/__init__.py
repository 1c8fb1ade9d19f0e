"""The node: one wake of boot, measure, encode, seal, queue, send and sleep."""
