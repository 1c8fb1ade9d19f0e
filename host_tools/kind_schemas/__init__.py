"""Body schemas, one module per node kind; each module lists its `SCHEMAS`.

Schema ids are assigned once and never reused (docs/payload.md, "Schema registry"):
1 climate v1, 2 climate v2, 3 soil v1, 4 water v1, 5 glass v1, 6 the node record.
"""
