"""Runs the engine's CLI (`python -m digits_engine ... --json`) in a child
process, so that TensorFlow never loads in the UI process."""
import json
import os
import subprocess
import sys

from digits_engine import ownership

from formatting import duration


def run_engine(args: list[str], jobs_dir, what: str, timeout_s: int, cpu_only: bool = False) -> dict:
    """The command's JSON, or {"error": text}: its own error, else its last line on stderr, or the timeout.
    `what` names the work in messages ("Classifying", "The export"). `cpu_only`: hide the GPUs (they are
    the training jobs'; TensorFlow would take all their memory)."""
    env = dict(os.environ, DIGITS_JOBS_DIR=str(jobs_dir), TF_CPP_MIN_LOG_LEVEL="3",
               DIGITS_USER=ownership.new_job_owner())  # a job it creates (an import) is the signed-in person's
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""
    try:
        done = subprocess.run([sys.executable, "-m", "digits_engine", *args, "--json"], capture_output=True,
                              text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"{what} took longer than {duration(timeout_s)} and was stopped."}
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    if isinstance(result, dict) and result.get("error"):
        return {"error": result["error"]}
    if done.returncode != 0 or not isinstance(result, dict):
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"{what} failed; the server's log says why."}
    return result
