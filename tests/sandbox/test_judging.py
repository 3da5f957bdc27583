"""The bundled montecarlo validate.py judges the same in the sandbox as natively, through
the comparator the transitioner uses; bundled custom validators are checked on install."""

import importlib.util
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from sparecycles.projects.catalogue import bundled_app_install, bundled_app_read
from sparecycles.sandbox.judging import pairs_judge
from sparecycles.sandbox.pool import pool
from sparecycles.scheduler.validators import check_set, comparator_for

MONTECARLO = Path(settings.BASE_DIR) / "workunits/montecarlo"


def native(name):
    spec = importlib.util.spec_from_file_location(f"sandbox_test_{name}", MONTECARLO / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_montecarlo_validate_py_agrees_with_native_cpython():
    main, inputs, validate = native("main.py"), native("inputs.py"), native("validate.py")
    outputs = [main.main(unit) for unit in inputs.generate(3, 0)]
    outputs += [{**outputs[0], "estimate": outputs[0]["estimate"] + 1e-12},  # within abs_tol
                {**outputs[0], "inside": outputs[0]["inside"] + 1},         # a cheater
                {"seed": "junk"}, None, [1, 2], {**outputs[1], "samples": True}]
    pairs = [(a, b) for a in outputs for b in outputs]
    code = (MONTECARLO / "validate.py").read_text()
    assert pairs_judge(code=code, pairs=pairs) == [validate.equivalent(a, b) for a, b in pairs]
    assert pool.started == 1  # 121 pairs, one sandbox


def test_the_transitioners_comparator_prefetches_a_work_unit_in_one_round_trip():
    code = (MONTECARLO / "validate.py").read_text()
    good = native("main.py").main(list(native("inputs.py").generate(1, 0))[0])
    bad = {**good, "inside": good["inside"] + 1}
    equal = comparator_for(validator="custom", options={}, code=code)
    assert check_set([good, bad, dict(good)], equal, min_quorum=2) == [0, 2]
    assert pool.started == 1


@pytest.mark.django_db
def test_a_bundled_custom_validator_is_checked_in_the_sandbox_on_install(tmp_path):
    shutil.copytree(Path(settings.BASE_DIR) / "workunits/primes", tmp_path / "primes")
    (tmp_path / "primes/validate.py").write_text(
        "import os\ndef equivalent(a, b):\n    return a['count'] == b['count']\n")
    bundled = bundled_app_read("primes", tmp_path)  # exact + validate.py = custom
    with pytest.raises(ValidationError, match=r"equivalent\(null, null\) raised TypeError"):
        bundled_app_install(bundled)
    (tmp_path / "primes/validate.py").write_text(
        "def equivalent(a, b):\n    return isinstance(a, dict) and a == b\n")
    version = bundled_app_install(bundled_app_read("primes", tmp_path))
    assert version.app.validator == "custom"


# Red team notes (issue 14): what the owner sees after a failed save-time check must not
# carry details of the host.
def test_the_save_check_shows_the_owners_exception_not_the_hosts_details(monkeypatch):
    from sparecycles.sandbox import judging
    from sparecycles.sandbox import pool as pool_module
    from sparecycles.sandbox.errors import ValidatorError
    from sparecycles.sandbox.isolation import Isolation

    with pytest.raises(ValidatorError) as raised:
        judging.validator_check(code="def equivalent(a, b):\n"
                                     "    raise ValueError('first line\\nsecond line')\n")
    assert "raised ValueError: first line." in raised.value.reason
    assert "second line" not in raised.value.reason

    hidden = "/srv/secret-host-path/bin/bwrap"
    monkeypatch.setattr(pool_module, "isolation", lambda: Isolation(
        mechanism="bwrap", prefix=(hidden,), runner="/x", pyodide="/y", node="/z"))
    with pytest.raises(ValidatorError) as raised:
        judging.validator_check(code="def equivalent(a, b):\n    return a == b\n")
    assert "could not start" in raised.value.reason
    assert "secret-host-path" not in raised.value.reason
