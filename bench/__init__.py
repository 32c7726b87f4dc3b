"""NEONPAY benchmarks: sync cost against the machine's floor and a naive full dump.

Run ``python -m bench`` (the full suite) or ``python -m bench --quick`` (what CI runs);
see ``bench/README.md``.
"""
