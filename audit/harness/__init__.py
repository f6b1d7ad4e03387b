"""Runtime harness: re-run a submission under torchrun in a sandbox, measure it, check its claims.

`pgolf-audit rerun DIR` (see `cli.py`) copies the folder to a scratch directory per seed, launches
`torchrun --standalone --nproc_per_node=N train_gpt.py` in its own process group with the network
cut where the OS allows and credentials scrubbed from the environment, streams the output to a log,
kills the whole group on timeout, then measures what a log alone cannot prove: the wall time, the
artifact files actually written, the exit status, and whether the original folder stayed untouched.
Everything becomes findings in the same Report as the static audit.

Nothing here imports torch: torchrun runs as a subprocess (`python -m torch.distributed.run`).
"""
