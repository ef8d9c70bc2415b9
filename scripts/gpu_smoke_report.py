#!/usr/bin/env python3
"""The GPU smoke test's report, from a job folder run.sh ran in (standard library only).

  gpu_smoke_report.py JOB_DIR EXIT_CODE SECONDS   → the report (JSON) on stdout

First and last train and eval loss, the install mode and Python, the training mode, the tokenizer
parity, how often the end-of-turn token is predicted at the end of assistant turns, and the GGUF's
name and size, with every error and warning the job printed.
"""

import json
import os
import sys


def load(job, path):
    try:
        with open(os.path.join(job, path), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def read_events(job):
    events = []
    try:
        with open(os.path.join(job, "run.log"), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("@@invagent "):
                    try:
                        events.append(json.loads(line[len("@@invagent ") :]))
                    except ValueError:
                        pass
    except OSError:
        pass
    return events


def first(events, name):
    return next((event for event in events if event.get("event") == name), {})


def report(job, code, seconds):
    events = read_events(job)
    metrics, verify = load(job, "out/metrics.json"), load(job, "out/verify.json")
    status = load(job, "state/status.json")
    losses, evals = metrics.get("lossHistory") or [], metrics.get("evalHistory") or []
    gguf = os.path.join(job, "out", "model.gguf")
    python, environment = first(events, "python"), first(events, "environment")
    parity = first(events, "tokenizer-parity")
    failures = ("error", "preflight-failed", "verify-failed")
    return {
        "exitCode": code,
        "status": status.get("status"),
        "failedStage": status.get("stage") if status.get("status") != "complete" else None,
        "errors": [event.get("message") for event in events if event.get("event") in failures],
        "warnings": [event.get("message") for event in events if event.get("event") == "warning"],
        "seconds": seconds,
        "install": python.get("install"),
        "python": python.get("python"),
        "packages": environment.get("packages") or metrics.get("packages"),
        "gpu": environment.get("gpu") or metrics.get("gpu"),
        "mode": metrics.get("mode"),
        "steps": metrics.get("steps"),
        "trainLoss": {"first": losses[0] if losses else None, "last": losses[-1] if losses else None},
        "evalLoss": {"first": evals[0] if evals else None, "last": evals[-1] if evals else None},
        "tokenizer": {
            "loadedAs": parity.get("loadedAs") or (metrics.get("tokenizer") or {}).get("loadedAs"),
            "reference": parity.get("reference"),
            "probeTokens": parity.get("probeTokens") or len((metrics.get("probe") or {}).get("ids") or []),
        },
        "eotPredictedAtTurnEnds": metrics.get("eotAccuracy"),
        "gguf": {
            "name": verify.get("name"),
            "architecture": verify.get("architecture"),
            "bytes": os.path.getsize(gguf) if os.path.exists(gguf) else None,
            "ok": verify.get("ok"),
            "checks": verify.get("checks"),
        },
    }


def main(argv):
    if len(argv) != 4:
        sys.stderr.write("usage: gpu_smoke_report.py JOB_DIR EXIT_CODE SECONDS\n")
        return 64
    print(json.dumps(report(argv[1], int(argv[2]), int(argv[3])), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
