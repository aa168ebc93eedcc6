"""Two `streamlit run` servers on one LATENT_EXPLORER_HOME (replicas sharing a store; not a test).

    python bench/two_servers.py

A temp home gets MNIST and a tiny model; servers A and B start on it (ports of their own). A browser
session opens each (time to the first finished run), then a training job is started through
`model.jobs.start_job` from this process (a third one: any replica's Retrain panel does the same),
while a second start from a subprocess gets the same job back (one job at a time across replicas).
When it ends, a new session on each server shows the new model (its label in the page). Printed: the
times, each server's RSS after its first session and after the second, and what each page showed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from browser_harness import StreamlitServer, launch_browser, new_page, open_app, prepare_home  # noqa: E402

from model import jobs  # noqa: E402
from model.paths import home, using_home  # noqa: E402
from model.store import ModelStore  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def session(browser, srv) -> tuple[float, str]:
    page = new_page(browser)
    t0 = time.perf_counter()
    open_app(page, srv.url)
    dt = time.perf_counter() - t0
    text = page.inner_text("body")
    page.context.close()
    return dt, text


def main() -> int:
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="two-servers-")) / "home"
    prepare_home(root, data_from=home())
    out: dict = {"load_before": os.getloadavg()}
    with using_home(root), sync_playwright() as pw:
        first = ModelStore().current()
        servers = [
            StreamlitServer(
                root, log_path=root.parent / f"{n}.log", extra_env={"LATENT_EXPLORER_BUNDLE": "0"}
            )
            for n in "AB"
        ]
        for s in servers:
            s.start(timeout=180)
        browser = launch_browser(pw)
        try:
            for name, s in zip("AB", servers):
                dt, text = session(browser, s)
                out[f"{name}_first_session_s"] = round(dt, 1)
                out[f"{name}_rss_mib_after_first"] = round(rss_mib(s.proc.pid))
                out[f"{name}_shows_first_model"] = first.label in text
            cfg = replace(first.config, seed=1)
            info = jobs.start_job(cfg)
            other = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import json, sys; from model import jobs; from model.config import VAEConfig; "
                    "i = jobs.start_job(VAEConfig.from_dict(json.loads(sys.argv[1]))); print(i.id, i.new)",
                    json.dumps(cfg.to_dict()),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )
            out["second_start_gets"] = other.stdout.strip()
            out["job"] = info.id
            js = jobs.wait_job(info.id, timeout=900)
            out["job_state"] = js.state
            new = ModelStore().record(js.model_id)
            for name, s in zip("AB", servers):
                dt, text = session(browser, s)
                out[f"{name}_second_session_s"] = round(dt, 1)
                out[f"{name}_rss_mib_after_second"] = round(rss_mib(s.proc.pid))
                out[f"{name}_shows_new_model"] = new.label in text
        finally:
            browser.close()
            for s in servers:
                s.stop()
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
