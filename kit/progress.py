"""Nothing slow is silent: commands whose output is streamed as it comes, and waits that say what
they wait for, for how long at most, and how long it took."""
import subprocess
import time

from kit import REPO_ROOT


def run(command, cwd=REPO_ROOT, env=None, show=True):
    """Runs a command, printing each line of its output (stdout and stderr) as it comes.
    Returns the lines; raises CalledProcessError, with the last lines, if it fails."""
    if show:
        print("$", " ".join(map(str, command)), flush=True)
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    lines = []
    for line in process.stdout:
        if line.strip():  # Docker's legacy builder and compose write many empty lines
            lines.append(line.rstrip("\n"))
            if show:
                print(lines[-1], flush=True)
    if process.wait() != 0:
        raise subprocess.CalledProcessError(process.returncode, command, output="\n".join(lines[-30:]))
    return lines


def wait_until(condition, what, timeout, interval=1.0, not_yet=()):
    """Polls condition() until it returns something true; prints one line before and one after.
    Returns that value. condition() may also say "not yet" by raising one of the `not_yet`
    exceptions: after `timeout` seconds the last of them is raised, else TimeoutError."""
    print(f"waiting up to {timeout:.0f} s for {what} ...", end=" ", flush=True)
    start = time.monotonic()
    while True:
        try:
            value, last = condition(), None
        except not_yet as err:
            value, last = None, err
        if value:
            print(f"done in {time.monotonic() - start:.1f} s", flush=True)
            return value
        if time.monotonic() - start > timeout:
            print("timed out", flush=True)
            raise last or TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)
