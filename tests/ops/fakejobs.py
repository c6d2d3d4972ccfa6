"""A stand-in for ``rapid job run``: reads the real spec and misbehaves as a test asks.

The job command is ``python fake_job.py ACTIONS_FILE`` + the spec URI; ACTIONS_FILE maps a rid to
what the job does: ``ok`` (manifest, exit 0), ``crash`` (exit 3, no manifest), ``nomanifest`` (exit 0,
no manifest), ``corrupt`` (a manifest that is not JSON), ``nextday`` (a manifest whose job ended the
day after the processing date), ``sleepN`` (sleep N seconds, then as ``ok``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPT = r'''
import json, os, sys, time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

actions = json.loads(open(sys.argv[1]).read())
spec = json.loads(open(urlparse(sys.argv[2]).path).read())
rid = str(spec.get("science", {}).get("rid", spec.get("science_jid")))
action = actions.get(rid, actions.get("*", "ok"))
prefix = urlparse(spec["product_prefix"]).path
os.makedirs(prefix, exist_ok=True)
counter = os.path.join(os.path.dirname(sys.argv[1]), "runs", rid)
os.makedirs(os.path.dirname(counter), exist_ok=True)
with open(counter, "a") as fh:
    fh.write(f"{spec['jid']}\n")
if action.startswith("sleep"):
    time.sleep(float(action[5:]))
    action = "ok"
if action == "crash":
    sys.exit(3)
if action == "nomanifest":
    sys.exit(0)
manifest = os.path.join(prefix, "manifest.json")
if action == "corrupt":
    open(manifest, "w").write("{this is not json")
    sys.exit(0)
now = datetime.now(timezone.utc)
started, ended = now, now
if action == "nextday":
    day = datetime.strptime(spec["procdate"], "%Y%m%d").replace(tzinfo=timezone.utc)
    started = day + timedelta(hours=23, minutes=50)
    ended = day + timedelta(days=1, hours=0, minutes=20)
record = {"kind": spec["kind"], "jid": spec["jid"], "exitcode": 0, "message": action,
          "started": started.isoformat(), "ended": ended.isoformat()}
tmp = manifest + ".tmp"
open(tmp, "w").write(json.dumps(record))
os.replace(tmp, manifest)
'''


def fake_job_command(folder: Path, actions: dict) -> list[str]:
    """The command prefix of a fake job; ``actions`` maps rid (or "*") to an action."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "fake_job.py"
    script.write_text(SCRIPT)
    table = folder / "actions.json"
    table.write_text(json.dumps({str(k): v for k, v in actions.items()}))
    return [sys.executable, str(script), str(table)]


def set_actions(command: list[str], actions: dict) -> None:
    """Change what the fake jobs of ``command`` do from now on."""
    Path(command[2]).write_text(json.dumps({str(k): v for k, v in actions.items()}))


def runs_per_rid(command: list[str]) -> dict[int, int]:
    """How many times a fake job started for each rid."""
    folder = Path(command[2]).parent / "runs"
    if not folder.is_dir():
        return {}
    return {int(p.name): len(p.read_text().split()) for p in folder.iterdir()}
