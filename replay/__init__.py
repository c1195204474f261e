"""stack-replay: capture → modeled Linux RX path → Parquet → perf-style report."""

__version__ = "0.1.0"
