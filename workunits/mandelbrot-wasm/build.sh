#!/bin/sh
# Rebuild mandelbrot-wasm.wasm from src/mandelbrot.c (same as `make -B`).
set -eu
cd "$(dirname "$0")"
exec make -B mandelbrot-wasm.wasm
