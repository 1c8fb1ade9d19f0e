"""Environment models: the physical truth the simulated parts measure."""
