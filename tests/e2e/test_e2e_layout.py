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
    page.mouse.move(x0 + 0.4 * w, y0 + 0.4 * h)
    page.mouse.down()
    n = runs_done(page)
    page.mouse.move(x0 + 0.5 * w, y0 + 0.5 * h, steps=5)
    page.mouse.move(x0 + 0.6 * w, y0 + 0.6 * h, steps=5)
    page.mouse.up()
    wait_runs(page, n)
    page.get_by_text("Selection:").first.wait_for()


def walk(page) -> None:
    """Select a box, pick test image PICK, open every collapsed section of the main area (each opens with
    a rerun; the sidebar's are closed on a phone and hold no images)."""
    box_select(page)
    goto = page.get_by_label("Go to test image #")
    goto.fill(str(PICK))
    n = runs_done(page)
    goto.press("Enter")
    wait_runs(page, n)
    page.get_by_text(f"test #{PICK} (original)").first.wait_for()
    for _ in range(20):
        closed = page.locator(
            '[data-testid="stMain"] [data-testid="stExpander"] details:not([open]) > summary'
        )
        if closed.count() == 0:
            break
        n = runs_done(page)
        closed.first.click()
        wait_runs(page, n)
    assert page.locator('[data-testid="stMain"] [data-testid="stExpander"] details:not([open])').count() == 0
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


# The scatter's toolbar (shown on hover) and the boxes it must not cover: axis titles, legend, plot area.
TOOLBAR_JS = """
(root) => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const gd = root.querySelector('.js-plotly-plot'), L = gd._fullLayout, g = gd.getBoundingClientRect();
  const x0 = g.left + L.xaxis._offset, y0 = g.top + L.yaxis._offset;
  const covered = [...root.querySelectorAll('.g-xtitle, .g-ytitle, .legend')]
    .map(e => [e.getAttribute('class'), box(e)]);
  covered.push(['plot', [x0, y0, x0 + L.xaxis._length, y0 + L.yaxis._length]]);
  return {toolbar: box(root.querySelector('.modebar')), covered};
}
"""


def toolbar_overlaps(page) -> list:
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    _, (x0, y0, w, h), _ = scatter_points(chart)
    page.mouse.move(x0 + w / 2, y0 + h / 2)  # the toolbar shows on hover
    chart.locator(".modebar").wait_for(state="visible")
    info = chart.evaluate(TOOLBAR_JS)
    t = info["toolbar"]
    return [
        name for name, b in info["covered"] if t[0] < b[2] and b[0] < t[2] and t[1] < b[3] and b[1] < t[3]
    ]


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)], ids=["1280x800", "390x844"])
def test_nothing_overflows_its_column(walked, width, height):
    page = walked(width, height)
    report = page.evaluate(OVERFLOW_JS)
    print(
        f"\n[layout {width}x{height}] main scroll/client {report['scroll']}, page {report['page']}, "
        f"{len(report['over'])} overflowing: {report['over'][:20]}"
    )
    try:
        covered = toolbar_overlaps(page)
        assert not covered, f"the scatter's toolbar covers: {covered}"
        assert report["scroll"][0] <= report["scroll"][1], (
            f"the main area scrolls sideways: {report['scroll']}"
        )
        assert report["page"][0] <= report["page"][1], f"the page scrolls sideways: {report['page']}"
        assert not report["over"], (
            f"{len(report['over'])} elements stick out of their column: {report['over']}"
        )
    finally:
        save_screenshot(page, f"layout-{width}x{height}", width)
