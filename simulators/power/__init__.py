"""Power supply models: batteries, and the ADC readings of their voltage."""
