"""Human-readable output: terminal tables (and, later, figures and the HTML report)."""
