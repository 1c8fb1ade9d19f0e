"""Host tools for the city sensor nodes: the `nodectl` command and its library."""
