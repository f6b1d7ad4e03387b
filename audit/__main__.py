"""`python -m audit` = `pgolf-audit`."""

import sys

from audit.cli import main

sys.exit(main())
