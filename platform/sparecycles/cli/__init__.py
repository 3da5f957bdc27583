"""The `sparecycles` console script (sparecycles.cli.main:main): a stdlib-only API client."""
