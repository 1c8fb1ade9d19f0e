"""Fleets of simulated nodes sharing one gateway (docs/simulator.md, "Fleets")."""
