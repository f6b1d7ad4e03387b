"""`python -m audit` = `pgolf-audit`.

Run inside a submission folder, `python -m` puts that folder first on sys.path, so a `json.py`
there would be imported instead of the standard library's. The first entry is dropped here before
any other import, as `python -P` does (an `audit/` package in the folder itself would be found
before this file runs: use the `pgolf-audit` command or `python -P -m audit` there).
"""

import os
import sys

if sys.path and sys.path[0] in ("", ".", os.getcwd()):
    del sys.path[0]

from audit.cli import main  # noqa: E402 - after the sys.path fix, on purpose

sys.exit(main())
