"""pgolf-audit: the compliance auditor and verifier for Parameter Golf submissions."""

__version__ = "0.1.0"
