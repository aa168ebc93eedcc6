"""`python -m model.jobs [status|cancel]`: show or cancel the latest job.

(`python -m model.jobs run JOB_DIR` is the job process itself, started by `model.jobs.start_job`.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from model.errors import JobError
from model.jobs.files import latest_job
from model.jobs.launch import cancel_job
from model.jobs.worker import run


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or ["status"]
    if args[0] == "run" and len(args) == 2:
        return run(Path(args[1]))
    try:
        if args[0] == "cancel":
            js = cancel_job()
        elif args[0] == "status":
            js = latest_job()
        else:
            print("usage: python -m model.jobs [status|cancel]", file=sys.stderr)
            return 2
    except JobError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if js is None:
        print("no training job yet")
        return 0
    eta = f", ETA {js.eta:.0f} s" if js.eta is not None else ""
    print(
        f"{js.id}: {js.state} ({js.phase}), epoch {js.epoch}/{js.epochs}, batch {js.step}/{js.steps}, "
        f"loss {js.loss}, val_loss {js.val_loss}, elapsed {js.elapsed:.0f} s{eta}"
    )
    if js.model_id:
        print(f"model: {js.model_id}")
    if js.warning:
        print(f"warning: {js.warning}")
    if js.error:
        print(f"error: {js.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
