"""reference_impl: the project's ground-truth trainer, quantiser and evaluator (torch required).

Modules are small and flat (nanochat style) and are concatenated by `bundle.py` into one
self-contained `train_gpt.py`, so cross-module imports use `from reference_impl.<mod> import ...`
at module top only (the bundler removes those lines).
"""
