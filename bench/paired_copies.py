#!/usr/bin/env python3
"""What two cores can give a training step: one-thread runs alone, two one-thread copies at once (one per
core), and one two-thread run, interleaved trial by trial (docs/benchmarks.md, section 5).

    python3 bench/paired_copies.py [--tweedie target/release/tweedie] [--workloads dsm_step,ssm_step]
                                   [--dim 784] [--trials 8] [--reps 30]

Two copies of the same one-thread step share what the two cores share (caches, memory bandwidth, the
clock a busy package can hold), so `2 * alone / paired` bounds the speed-up any two-thread step can reach
on the machine; the last column says how close the two-thread step comes. Prints a Markdown table of the
medians over trials. Standard library only; Linux (taskset pins each run to its cores).
"""
import argparse
import json
import os
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tweedie", default="target/release/tweedie", help="tweedie binary (relative to the repo root)")
    ap.add_argument("--workloads", default="dsm_step,ssm_step")
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--reps", type=int, default=30, help="timed calls per run")
    a = ap.parse_args()
    binary = os.path.join(ROOT, a.tweedie)

    def argv(workload, cpus, threads):
        return ["taskset", "-c", cpus, binary, "bench", "--workloads", workload, "--dims", str(a.dim),
                "--threads", str(threads), "--reps", str(a.reps)]

    def median_ms(out):
        return json.loads(out.splitlines()[-1])["median_ms"]

    def run(workload, cpus, threads):
        return median_ms(subprocess.run(argv(workload, cpus, threads), capture_output=True, text=True,
                                        check=True).stdout)

    print("| workload | d | alone ms | each of two copies ms | two threads ms | ceiling 2 alone / copy "
          "| two-thread speed-up | of the ceiling |")
    print("|---|---|---|---|---|---|---|---|")
    for workload in a.workloads.split(","):
        alone, copies, two = [], [], []
        for _ in range(a.trials):
            alone.append(run(workload, "0", 1))
            other = subprocess.Popen(argv(workload, "1", 1), stdout=subprocess.PIPE, text=True)
            copies.append(run(workload, "0", 1))
            copies.append(median_ms(other.communicate()[0]))
            two.append(run(workload, "0,1", 2))
        t1, tc, t2 = (statistics.median(v) for v in (alone, copies, two))
        ceiling, speedup = 2 * t1 / tc, t1 / t2
        print(f"| {workload} | {a.dim} | {t1:.3g} | {tc:.3g} | {t2:.3g} | {ceiling:.2f} | {speedup:.2f} "
              f"| {speedup / ceiling:.0%} |")


if __name__ == "__main__":
    main()
