"""Speed benchmarks: DNAS step time (``dnas_speed``), GA scoring and search speed (``ga_speed``)
and the masked supernet's cost against the number of channel options (``dmasking_scaling``).
Each writes ``benchmarks/results/<name>.json`` (``<name>_quick.json`` with ``--quick``)."""
