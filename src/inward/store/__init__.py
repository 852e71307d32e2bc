"""Run directories (records, manifests, atomic writes, locks) and the response cache."""
