"""A run made SUBMITTED by a launcher that died before sending its job: DEAD once the launcher is gone, never
SUBMITTED forever (:mod:`mlxcore.store.reconcile`, rule 8)."""

from __future__ import annotations

import signal
import subprocess
import sys

from mlxcore.schedulers.observe import observe
from mlxcore.store import RunStore


def test_a_run_whose_launcher_died_before_submitting_it_is_dead_not_submitted_forever(tmp_path):
    """A launcher killed between making its SUBMITTED runs and sending their jobs leaves runs with no submission
    record: while it lives they are SUBMITTED, once it is gone they are DEAD (CANCELLED when a cancel was asked),
    so ``rerun_failed`` and a resumed search take them up instead of waiting for them forever."""
    code = ("import sys\nfrom mlxcore.store import RunStore\nfrom mlxcore.store.batch import SubmissionBatch\n"
            "from mlxcore.store.lease import process_record\n"
            "SubmissionBatch(RunStore(sys.argv[1])).create([({'submitter': process_record()}, {'x': i}) "
            "for i in range(2)], {})\nprint('made', flush=True)\nsys.stdin.read()\n")
    launcher = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert launcher.stdout.readline().strip() == "made"
        assert [s.status for s in observe(tmp_path)] == ["SUBMITTED", "SUBMITTED"]  # its launcher may submit them
        RunStore(tmp_path).open(2).request_cancel()
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    states = observe(tmp_path)
    assert [s.status for s in states] == ["DEAD", "CANCELLED"]
    assert states[0].detail.startswith(f"never submitted: its launcher (pid {launcher.pid} on ")
    # a run that was submitted (it has a record) is judged by its scheduler as before, whoever made it
    RunStore(tmp_path).open(1).record_submission({"name": "local", "job_id": "1.0", "submit_time": "2026-01-01"})
    assert not observe(tmp_path)[0].detail.startswith("never submitted")
