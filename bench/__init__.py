"""The benchmark suite: `python -m bench` (make bench) writes bench/results.json and
bench/results.md. docs/benchmarks.md says what each figure means."""
