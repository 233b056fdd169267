"""Adapters: the implementations of the ports (S3, xdelta3, hashing, cache, clock, logging)."""
