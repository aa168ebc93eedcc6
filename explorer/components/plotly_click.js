// Forwards clicks on a Plotly chart of the page to the server: Streamlit's own st.plotly_chart reports
// clicks only on 2-D selectable traces, not on a 3-D scatter. Finds the chart by its aria-label prefix
// (st.plotly_chart's `alt`), hooks `plotly_click` once per graph div (Streamlit may rebuild the div), and
// sends the clicked point's customdata[0] (its test-set row) as the trigger value `clicked`.
export default function (component) {
  const { setTriggerValue, data } = component;
  const selector = '[data-testid="stPlotlyChart"][aria-label^="' + CSS.escape(data.label) + '"] .js-plotly-plot';
  const hook = () => {
    for (const gd of document.querySelectorAll(selector)) {
      if (gd.__latentClickHooked || typeof gd.on !== "function") continue;
      gd.__latentClickHooked = true;
      gd.on("plotly_click", (event) => {
        const point = event && event.points && event.points[0];
        if (!point || point.customdata === undefined || point.customdata === null) return;
        let cd = point.customdata; // [row], [row, label] or a typed array: the row comes first
        while (Array.isArray(cd) || ArrayBuffer.isView(cd)) cd = cd[0];
        const row = Number(cd);
        if (Number.isInteger(row) && row >= 0) setTriggerValue("clicked", { row: row, at: Date.now() });
      });
    }
  };
  hook();
  const timer = setInterval(hook, 250);
  return () => clearInterval(timer);
}
