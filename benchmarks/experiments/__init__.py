"""The experiments: one script per claim of the papers, each run as
``python -m benchmarks.experiments.<name>`` (``--quick`` for a smoke run) with its settings in
``configs/benchmarks/<name>.yaml``; what they share is :mod:`benchmarks.experiments.common`, the
recorded numbers are in ``benchmarks/RESULTS.md``."""
