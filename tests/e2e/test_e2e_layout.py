"""The whole page in a real Chromium at a laptop (1280×800) and a phone (390×844) width, after a walk that
shows every image the page can show: a box selection on the scatter, a pick, every collapsed section opened.

Checked: nothing sticks out of its column or makes the main area scroll sideways, and every image says what
it is (alt text). A full-page screenshot of each width is saved under artifacts/e2e/ to look at.
"""

from __future__ import annotations

import pytest
from browser_harness import (
    ARTIFACTS,
    new_page,
    open_app,
    runs_done,
    scatter_points,
    wait_idle,
    wait_runs,
)

PICK = 40

# Every element of the main area whose right edge passes the content box of its column (or of the main
# block), by more than 1 px; and the main area's own sideways scroll.
OVERFLOW_JS = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const block = document.querySelector('[data-testid="stMainBlockContainer"]');
  const boxes = ['stColumn', 'stMainBlockContainer', 'stExpanderDetails']
    .map(t => `[data-testid="${t}"]`).join(', ');
  const contentRight = (el) => {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth);
  };
  const over = [];
  const els = block.querySelectorAll('[data-testid="stElementContainer"] > *, img, table, button, p, iframe');
  for (const el of els) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const col = el.parentElement.closest(boxes);
    if (!col) continue;
    const by = r.right - contentRight(col);
    if (by > 1) over.push({what: el.tagName + ' ' + (el.getAttribute('data-testid') || ''),
                           text: (el.getAttribute('alt') || el.innerText || '').slice(0, 60),
                           by: Math.round(by), column: col.getAttribute('data-testid')});
  }
  return {scroll: [main.scrollWidth, main.clientWidth],
          page: [document.documentElement.scrollWidth, document.documentElement.clientWidth], over};
}
"""


def scatter(page):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first


def box_select(page) -> None:
    """Drag a box over the middle of the scatter (the selection panel then shows its images)."""
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    _, (x0, y0, w, h), _ = scatter_points(chart)
    page.mouse.move(x0 + w / 2, y0 + h / 2)  # the modebar shows on hover
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    page.mouse.move(x0 + 0.3 * w, y0 + 0.3 * h)
    page.mouse.down()
    n = runs_done(page)
    page.mouse.move(x0 + 0.5 * w, y0 + 0.5 * h, steps=5)
    page.mouse.move(x0 + 0.7 * w, y0 + 0.7 * h, steps=5)
    page.mouse.up()
    wait_runs(page, n)
    page.get_by_text("Selection:").first.wait_for()


def walk(page) -> None:
    """Select a box, pick test image PICK, open every collapsed section (each opens with a rerun)."""
    box_select(page)
    goto = page.get_by_label("Go to test image #")
    goto.fill(str(PICK))
    n = runs_done(page)
    goto.press("Enter")
    wait_runs(page, n)
    page.get_by_text(f"test #{PICK} (original)").first.wait_for()
    for _ in range(20):
        closed = page.locator('[data-testid="stExpander"] details:not([open]) > summary')
        if closed.count() == 0:
            break
        n = runs_done(page)
        closed.first.click()
        wait_runs(page, n)
    assert page.locator('[data-testid="stExpander"] details:not([open])').count() == 0
    wait_idle(page)
    page.wait_for_function(  # every image decoded (a layout measured before would be wrong)
        "() => [...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)"
    )


def save_screenshot(page, name: str, width: int) -> None:
    """The main area scrolls inside the page: a tall viewport of the same width shows all of it."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(int(height) + 50, 16000)})
    page.wait_for_timeout(500)  # a resize reflows the page and replots the charts (no event to wait on)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def walked(browser, server, request):
    """One walked page per width, shared by the tests of that width."""
    pages = {}

    def get(width: int, height: int):
        if width not in pages:
            page = new_page(browser, viewport=(width, height))
            open_app(page, server.url)
            walk(page)
            pages[width] = page
        return pages[width]

    yield get
    for page in pages.values():
        page.context.close()


def test_every_image_says_what_it_is(walked):
    page = walked(1280, 800)
    imgs = page.evaluate(
        "() => [...document.querySelectorAll('img')].map(i => [i.getAttribute('alt'), i.src.slice(-40)])"
    )
    assert len(imgs) > 40, f"the walk should show many images: {len(imgs)}"
    empty = [src for alt, src in imgs if not (alt or "").strip()]
    assert not empty, f"{len(empty)} of {len(imgs)} images have no alt text: {empty[:5]}"
    alts = [alt for alt, _ in imgs]
    assert f"test image #{PICK}, label 1" in alts, alts[:10]
    assert any(a.startswith(f"reconstruction of test image #{PICK}") for a in alts)
    assert any(a.startswith("decoded digit at t = 0.00") for a in alts)
    label = scatter(page).get_attribute("aria-label") or ""
    assert label.startswith("Scatter plot of the 10,000 test images in the latent plane"), label
