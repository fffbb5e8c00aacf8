"""What a visitor sees after one search: result pictures fully on screen without scrolling, in headless Chromium.

    python benchmarks/first_screen.py                          # starts the demo app, laptop and phone sizes
    python benchmarks/first_screen.py --url http://127.0.0.1:7860/ --shots /tmp/shots

Types the query into the search box, presses Enter, waits for the gallery's pictures, and counts those whose whole
box lies inside the window; also says whether anything on the page is wider than the screen (cut off on a phone).
Targets (issue 11): at least 6 pictures at 1366x768 and at least 4 at 412x900.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"laptop": (1366, 768), "phone": (412, 900)}
TARGETS = {"laptop": 6, "phone": 4}

VISIBLE = """() => {
  const w = window.innerWidth, h = window.innerHeight;
  const pics = [...document.querySelectorAll('#mm-gallery img')].filter(i => i.complete && i.naturalWidth > 0);
  const inside = pics.filter(i => { const r = i.getBoundingClientRect();
    return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= h + 0.5 && r.right <= w + 0.5; });
  const first = pics.length ? pics[0].getBoundingClientRect() : null;
  return {shown: pics.length, visible: inside.length, page_width: document.documentElement.scrollWidth,
          first_top: first ? Math.round(first.top) : null, thumb: first ? Math.round(first.width) : null};
}"""


def launch_browser(playwright):
    """Debian's chromium (Playwright's own download needs the internet)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    return (
        playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        if path
        else playwright.chromium.launch()
    )


def open_app(page, url: str, timeout_ms: int = 120_000):
    """Opens the app and waits for its search box. Not "networkidle": on a loaded 2-core CI machine the first page
    load's many script requests kept the network busy past 60 s once; the box is what a person waits for."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    box = page.locator("#mm-query textarea, #mm-query input").first
    box.wait_for(state="visible", timeout=timeout_ms)
    return box


def search_from_box(page, url: str, query: str, timeout_ms: int = 60_000) -> None:
    box = open_app(page, url, 2 * timeout_ms)
    box.fill(query)
    box.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#mm-gallery img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 6",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(300)  # layout settles after the last picture


def measure(url: str, query: str, shots: Path | None) -> dict[str, dict]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = launch_browser(p)
        for name, (width, height) in SIZES.items():
            page = browser.new_page(
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                is_mobile=name == "phone",
                has_touch=name == "phone",
            )
            search_from_box(page, url, query)
            out[name] = page.evaluate(VISIBLE) | {"width": width, "height": height}
            if shots:
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / f"first-screen-{name}.png"))
            page.close()
        browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running app (default: start the demo app on --port)")
    parser.add_argument("--port", type=int, default=7871, help="port for the app this script starts")
    parser.add_argument("--query", default="blue dotted mug", help="what to type into the search box")
    parser.add_argument("--shots", type=Path, help="also save a screenshot per size here")
    args = parser.parse_args()
    proc = None
    url = args.url
    if not url:
        from load import start_app  # benchmarks/load.py: starts app.py and waits for /readyz

        proc = start_app(args.port, [])
        url = f"http://127.0.0.1:{args.port}/"
    try:
        figures = measure(url, args.query, args.shots)
    finally:
        if proc:
            proc.terminate()
    ok = True
    for name, f in figures.items():
        met = f["visible"] >= TARGETS[name] and f["page_width"] <= f["width"]
        ok &= met
        print(
            f"{name} {f['width']}x{f['height']}: {f['visible']} of {f['shown']} result pictures fully visible "
            f"without scrolling (target >= {TARGETS[name]}); first picture at y={f['first_top']} px, "
            f"{f['thumb']} px wide; page {f['page_width']} px wide -> {'met' if met else 'NOT met'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
