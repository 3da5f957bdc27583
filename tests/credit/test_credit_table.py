"""manage.py credit_table: the docs' table is reproducible, and normalisation holds in it."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sparecycles.credit.normalisation import micro_credit_for_flops
from sparecycles.projects.catalogue import bundled_app_read

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_slow_machine_earns_four_times_raw_and_the_same_normalised():
    out = io.StringIO()
    call_command("credit_table", units=3, apps="montecarlo", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if line.startswith("| montecarlo"))
    cells = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
    raw_ratio, norm_ratio = float(cells[5]), float(cells[8])
    # The ratios come from timed native runs, so a loaded machine moves them a little;
    # the behaviour is the gap between them: ×4 claimed raw, about ×1 once normalised.
    assert 3.0 <= raw_ratio <= 5.0          # before: the slow machine claims ×4
    assert 0.8 <= norm_ratio <= 1.25        # after: the same credit for the same work
    declared = micro_credit_for_flops(bundled_app_read("montecarlo").flops_per_unit)
    assert int(cells[2]) == declared        # the manifest's declared estimate...
    assert float(cells[9]) <= declared      # ...only lowers what is granted
    assert re.search(r"reference device 1 GFLOPS", out.getvalue())
    with pytest.raises(CommandError, match="throwaway"):
        call_command("credit_table", units=3, apps="montecarlo", stdout=io.StringIO())
