"""What a fleet is made of: its nodes, their kinds, where they stand and when they power on.
Everything comes from the fleet's seed.

    plans = plan(nodes=8, kinds=["climate", "glass"], seed=1)
    plans[0]   # NodePlan(index=0, name='climate-0001', kind='climate', seed=..., ...)

Kinds take turns (node i is kinds[i % len(kinds)]). Each node stands at a random spot of a
disc around the gateway (uniform over its area, so more nodes far out than close in) and
powers on at a random instant within its first interval, so that a fleet does not send in
lock-step as no real deployment does.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators import kinds as sim_kinds

RADIUS_M = 4000.0        # a district around one gateway; Okumura-Hata urban puts SF12's edge near 6 km
MIN_DISTANCE_M = 50.0


@dataclass(frozen=True)
class NodePlan:
    index: int
    name: str
    kind: str
    seed: int            # the node's own seed: its environment, radio and identifiers
    distance_m: float | None   # to the gateway; None: on the gateway's bench (never lost)
    power_on_s: float    # virtual seconds after the start of the run
    interval_s: int


def parse_kinds(text: str) -> list[str]:
    """`climate,soil` -> ["climate", "soil"], each a known kind."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    known = sim_kinds.available()
    bad = [k for k in kinds if k not in known]
    if not kinds or bad:
        raise ValueError(f"--kinds takes a comma-separated list of {', '.join(known)}"
                         + (f"; unknown: {', '.join(bad)}" if bad else ""))
    return kinds


def plan(nodes: int, kinds: list[str], seed: int, radius_m: float = RADIUS_M) -> list[NodePlan]:
    if nodes < 1:
        raise ValueError("a fleet has at least one node")
    if not kinds:
        raise ValueError("a fleet needs at least one kind")
    plans, counts = [], {}
    for i in range(nodes):
        kind = kinds[i % len(kinds)]
        counts[kind] = counts.get(kind, 0) + 1
        rng = random.Random(f"fleet:{seed}:{i}")
        interval = getattr(sim_kinds.rig_class(kind), "DEFAULT_INTERVAL_S", 900)
        distance = max(MIN_DISTANCE_M, radius_m * math.sqrt(rng.random()))
        plans.append(NodePlan(i, f"{kind}-{counts[kind]:04d}", kind, seed * 100_003 + i,
                              round(distance, 1), round(rng.uniform(0, interval), 3), interval))
    return plans
