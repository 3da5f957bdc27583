// The public project page's picture: validated image tiles painted onto a canvas.
//
// Each <canvas data-tiles-url> asks the server for tiles after the last one it has
// (?after=<id>), paints them, and keeps asking every few seconds, so the picture fills
// in as volunteers' results are validated. A tile's output carries its place
// (x0, y0), the picture's size (width, height) and iteration counts; a count equal
// to max_iter means "inside the set" and is painted black.

const POLL_MS = 5_000;
const PALETTE = buildPalette(256);

function buildPalette(size) {
  const colours = new Uint8ClampedArray(size * 3);
  for (let i = 0; i < size; i += 1) {
    const t = i / (size - 1);
    // A deep blue -> teal -> gold -> white ramp (Ultra Fractal-like).
    const stops = [[0, 7, 100], [32, 107, 203], [237, 255, 255], [255, 170, 0], [0, 2, 0]];
    const at = t * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(at));
    const f = at - k;
    for (let c = 0; c < 3; c += 1) {
      colours[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f;
    }
  }
  return colours;
}

function paint(context, tile) {
  const rows = tile.iterations;
  const height = rows.length;
  const width = height ? rows[0].length : 0;
  if (!width) return;
  const image = context.createImageData(width, height);
  const logMax = Math.log(tile.max_iter + 1);
  for (let y = 0; y < height; y += 1) {
    const row = rows[y];
    for (let x = 0; x < width; x += 1) {
      const n = row[x];
      const at = (y * width + x) * 4;
      if (n >= tile.max_iter) {
        image.data[at] = image.data[at + 1] = image.data[at + 2] = 0;
      } else {
        const p = Math.min(255, Math.floor((Math.log(n + 1) / logMax) * 255 * 1.6) % 256) * 3;
        image.data[at] = PALETTE[p];
        image.data[at + 1] = PALETTE[p + 1];
        image.data[at + 2] = PALETTE[p + 2];
      }
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, tile.x0, tile.y0);
}

async function follow(canvas) {
  const status = canvas.parentElement.querySelector(".pj-mosaic-status");
  const context = canvas.getContext("2d");
  let after = 0;
  let painted = 0;
  let expected = 0;
  for (;;) {
    let answer = null;
    try {
      const response = await fetch(`${canvas.dataset.tilesUrl}?after=${after}`,
                                   { credentials: "same-origin" });
      if (response.ok) answer = await response.json();
    } catch {
      answer = null;
    }
    if (answer) {
      for (const tile of answer.tiles) {
        if (!painted && (canvas.width !== tile.width || canvas.height !== tile.height)) {
          canvas.width = tile.width;
          canvas.height = tile.height;
        }
        if (tile.width !== canvas.width) continue;   // another picture size
        paint(context, tile);
        painted += 1;
        const size = tile.iterations.length || 1;
        expected = Math.ceil(tile.width / size) * Math.ceil(tile.height / size);
      }
      after = answer.last;
      canvas.dataset.painted = String(painted);
      status.textContent = painted
        ? `${painted} of ${expected} tiles validated${painted >= expected ? " — complete" : ""}.`
        : "No tile validated yet; each appears once volunteers agree on it.";
      if (answer.tiles.length) continue;   // more may be waiting right away
    }
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
  }
}

for (const canvas of document.querySelectorAll("canvas[data-tiles-url]")) {
  follow(canvas);
}
