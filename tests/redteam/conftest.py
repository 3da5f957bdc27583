"""The red team's tests reuse the browser tests' fixtures (real daphne, real Chromium)."""

from tests.e2e.conftest import (  # noqa: F401
    allow_orm_beside_playwright,
    browser_type_launch_args,
    live_daphne,
)
