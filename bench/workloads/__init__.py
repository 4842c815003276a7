"""One module per benchmark workload; ``bench/run.py`` finds them (see its
``discover_workloads``)."""
