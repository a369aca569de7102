"""Timing shared by the benchmark scripts."""
import statistics
import time


def median_ms_in_turns(calls, reps, warmup=1):
    """Median ms of each call, the calls timed in turns (one of each per round), so that a
    drift in the machine's speed moves them alike and their ratios stay fair."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}
