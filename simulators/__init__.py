"""Virtual hardware for the city sensor nodes: buses, parts, modems, environment, fleet."""
