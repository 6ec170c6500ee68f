"""
Benchmarks for twisted_ch: keep-alive polling cost against raw Twisted and asyncio, event
latencies, and a long flapping soak.  Run C{python -m bench --help}; see C{bench/README.md}.

Numbers, not tests: nothing here asserts, every run writes what it measured.
"""
