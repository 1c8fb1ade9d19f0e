# Runs after every reset: one wake of the node, ending in deep sleep.
import node.wake

node.wake.main()
