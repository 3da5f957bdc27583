"""Work-unit inputs: exactly those of the Python Mandelbrot app (../mandelbrot/inputs.py).

Loaded from that file rather than copied, so the two apps can never drift apart and a
benchmark compares the same computation.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_mandelbrot_inputs", Path(__file__).resolve().parent.parent / "mandelbrot" / "inputs.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

generate = _module.generate
TILE, BASE, MAX_ITER, VIEWS = _module.TILE, _module.BASE, _module.MAX_ITER, _module.VIEWS
