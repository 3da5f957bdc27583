"""Render the PWA's PNG icons from the SVGs with the Chromium the browser tests use.

    .venv/bin/python static/pwa/make_icons.py

No image library needed: Chromium rasterises the SVG and Playwright screenshots it
at the exact pixel size. The PNGs are committed; run this again after changing
img/logo.svg or pwa/icon-maskable.svg.
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
LOGO = HERE.parent / "img" / "logo.svg"          # rounded square, transparent corners
MASKABLE = HERE / "icon-maskable.svg"            # full bleed, motif inside the safe zone
ICONS = [
    (LOGO, 192, "icon-192.png"),
    (LOGO, 512, "icon-512.png"),
    (MASKABLE, 192, "icon-maskable-192.png"),
    (MASKABLE, 512, "icon-maskable-512.png"),
    (MASKABLE, 180, "apple-touch-icon.png"),     # iOS rounds the corners itself
]


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        for source, size, name in ICONS:
            page = browser.new_page(viewport={"width": size, "height": size},
                                    device_scale_factor=1)
            svg = source.read_text()
            page.set_content(
                "<!doctype html><style>html,body{margin:0;background:transparent}"
                f"svg{{display:block;width:{size}px;height:{size}px}}</style>{svg}")
            page.screenshot(path=str(HERE / name), omit_background=True,
                            clip={"x": 0, "y": 0, "width": size, "height": size})
            page.close()
            print(f"{name}: {size}x{size}")
        browser.close()


if __name__ == "__main__":
    main()
