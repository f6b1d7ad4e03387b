"""Shared static-analysis substrate: each file is parsed once and every rule asks the same facts."""
