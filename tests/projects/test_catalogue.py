"""Bundled apps load through the management command."""

import pytest
from django.core.management import CommandError, call_command

from sparecycles.projects.catalogue import bundled_app_names, bundled_app_read
from sparecycles.projects.models import App, WorkUnit

pytestmark = pytest.mark.django_db


def test_catalogue_has_mandelbrot_and_more():
    names = bundled_app_names()
    assert "mandelbrot" in names and len(names) >= 2


def test_load_workunits_creates_n_units_from_inputs_py(capsys):
    call_command("load_workunits", "mandelbrot", "--count", "5")
    assert "with 5 work units" in capsys.readouterr().out
    units = list(WorkUnit.objects.filter(known_output__isnull=True).order_by("seq"))
    expected = bundled_app_read("mandelbrot").generate_inputs(5)
    assert [u.input for u in units] == expected
    assert units[0].min_quorum == bundled_app_read("mandelbrot").quorum.min_quorum


def test_a_fresh_bundled_app_gets_known_answers_computed_natively(settings):
    # Without them, nothing could establish the first devices and a quorum-2 app would
    # never validate (issue 16: bootstrapping trust needs no manual step).
    call_command("load_workunits", "mandelbrot", "--count", "5")
    bundled = bundled_app_read("mandelbrot")
    known = list(WorkUnit.objects.filter(known_output__isnull=False).order_by("seq"))
    assert len(known) == settings.SPARECYCLES["KNOWN_ANSWERS"]
    # Inputs of the same series, just past the batch; answers from main.py itself.
    assert [k.input for k in known] == bundled.generate_inputs(5 + len(known))[5:]
    main = bundled.module("main").main
    assert all(k.known_output == main(k.input) for k in known)
    call_command("load_workunits", "mandelbrot", "--count", "5", "--seed", "1")
    assert WorkUnit.objects.filter(known_output__isnull=False).count() == len(known)  # once


def test_loading_again_reuses_the_same_version():
    call_command("load_workunits", "primes", "--count", "1")
    call_command("load_workunits", "primes", "--count", "1", "--quorum", "1", "--target", "1")
    app = App.objects.get(name="primes")
    assert app.versions.count() == 1
    assert WorkUnit.objects.filter(min_quorum=1, target_nresults=1,
                                   known_output__isnull=True).count() == 1


def test_custom_validator_is_installed_from_validate_py():
    call_command("load_workunits", "montecarlo", "--count", "1")
    app = App.objects.get(name="montecarlo")
    assert "def equivalent" in app.validate_code


def test_unknown_app_is_a_clear_error():
    with pytest.raises(CommandError, match="No bundled app called 'nope'"):
        call_command("load_workunits", "nope")


def test_setup_demo_is_idempotent(capsys):
    call_command("setup_demo", "--count", "2")
    call_command("setup_demo", "--count", "2")
    assert WorkUnit.objects.count() == 4
