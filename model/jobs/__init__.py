"""Background training jobs: one training process at a time, followed through files.

The job process is `python -m model.jobs run JOB_DIR`: it takes the job lock, reads JOB_DIR/config.json
(the VAEConfig to train) and calls `model.train.train` with it (a job keeps only the model in the store:
no vae.weights.h5, TensorBoard logs or figures).

    info = start_job(VAEConfig(epochs=5))     # returns at once; the training runs in a subprocess
    job_status(info.id)                       # JobStatus: state, epoch/step, losses, ETA, model id...
    cancel_job()                              # SIGINT, then SIGKILL after a grace period

Layout under `home()/jobs/`:
    job.lock               held by the training process for its whole life (filelock.FileLock, taken
                           before TensorFlow loads); the kernel frees it when the process ends, even
                           on kill -9
    launch.lock            held for a moment by whoever starts a job, so check-then-spawn is atomic
                           across threads and processes
    latest.json            {"id": ...} the most recent job
    <job id>/config.json   the VAEConfig to train (VAEConfig.to_dict(); read back with from_dict)
             status.json   config, pid, times, final state (atomic writes)
             progress.jsonl  model.progress events: start / batch / epoch / done / error
             log             the process's stdout and stderr
             cancel          exists once a cancel was requested

Nothing here imports TensorFlow: a UI can poll `job_status` cheaply. The state of a job is derived
from its files, so it is right whoever asks (another session, another process, after the launcher
died): a `done` event means succeeded. Without one, once the process is gone, the store decides: the
trainer writes the job's id into the model's meta.json, so a saved model naming the job means succeeded
(with a warning if something failed after the save: a kill, a full disk), and no such model means failed
(killed, crashed, an `error` event) or cancelled.

The package, one concept per module:
    status.py   pure: progress events + facts -> state (derive) -> JobStatus (build) and the ETA
    procs.py    is the process alive (pid + start time), is a lock held; the launcher's reaper threads
    files.py    the layout under home()/jobs, reading a job's files into its live status (job_status)
    launch.py   start_job (config.json, the process, the lock dance) and cancel_job
    worker.py   the job process: config.json -> model.train.train -> done / error event
    backends.py where a job trains: LocalBackend (start_job, the default) or RayBackend (a Ray task
                per job, followed by a sweep driver: events, cancel, the model back into the store)
    remote.py   what a Ray worker runs for a job (imported by the workers, not here)
    __main__.py python -m model.jobs [status|cancel|run JOB_DIR]
"""

from model.jobs.backends import check_resources, make_backend, resolve
from model.jobs.files import (
    active_job,
    job_status,
    jobs_root,
    latest_job,
    list_jobs,
    read_json,
    wait_job,
    write_json,
)
from model.jobs.launch import NICE_ENV, JobInfo, cancel_job, start_job
from model.jobs.status import SAVE_S, STATES, JobStatus, death_message

__all__ = [  # what callers outside the package use (errors: model.errors)
    "NICE_ENV",
    "SAVE_S",
    "STATES",
    "JobInfo",
    "JobStatus",
    "active_job",
    "cancel_job",
    "check_resources",
    "death_message",
    "job_status",
    "jobs_root",
    "latest_job",
    "list_jobs",
    "make_backend",
    "read_json",
    "resolve",
    "start_job",
    "wait_job",
    "write_json",
]
