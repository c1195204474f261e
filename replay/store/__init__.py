"""Parquet schemas and run directories: the contract every later step reads."""
