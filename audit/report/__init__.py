"""Renderers of audit results: terminal (rich), JSON, SARIF, GitHub annotations, HTML (jinja2)."""
