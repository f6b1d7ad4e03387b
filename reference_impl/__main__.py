"""`python -m reference_impl` = one training run (same as `python -m reference_impl.train`)."""

from reference_impl.train import main

main()
