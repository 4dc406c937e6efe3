#!/usr/bin/env python3
"""Writes the largest budget rounds the ledger accepts as Pabulib files, for timing the
tallies (docs/benchmarks.md, "Tallies at the largest round"): 200,000 voters (the
ledger's ROUND_VOTERS_MAX) and 256 projects (ROUND_PROJECTS_MAX), with approval ballots
(each voter approves 1 to 20 projects, popular ones more often) or knapsack ballots (each
voter picks projects in a random order while their total cost fits the budget). Nearly
every ballot differs, so the tallies cannot merge voters.

    python3 scripts/worst_case_pb.py --kind approval --out /tmp/worst-approval.pb
    python3 scripts/worst_case_pb.py --kind knapsack --out /tmp/worst-knapsack.pb
"""

from __future__ import annotations

import argparse
import random
import sys

VOTERS = 200_000
PROJECTS = 256
BUDGET = 10_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=["approval", "knapsack"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--voters", type=int, default=VOTERS)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    costs = [rng.randint(50_000, 1_000_000) for _ in range(PROJECTS)]
    # Popularity falls off with the project's number (a few favourites, a long tail).
    weights = [1.0 / (1 + p) ** 0.7 for p in range(PROJECTS)]
    lines = [
        "META",
        "key;value",
        f"description;worst case, {args.kind}",
        f"num_projects;{PROJECTS}",
        f"num_votes;{args.voters}",
        f"budget;{BUDGET}",
        "vote_type;approval",
    ]
    if args.kind == "knapsack":
        lines.append(f"max_sum_cost;{BUDGET}")
    lines += ["PROJECTS", "project_id;cost;name"]
    lines += [f"{p};{c};project {p}" for p, c in enumerate(costs)]
    lines += ["VOTES", "voter_id;vote"]
    for v in range(args.voters):
        if args.kind == "approval":
            want = rng.randint(1, 20)
            chosen: set[int] = set()
            while len(chosen) < want:
                chosen.update(rng.choices(range(PROJECTS), weights=weights, k=want - len(chosen)))
        else:
            chosen = set()
            spent = 0
            for p in rng.choices(range(PROJECTS), weights=weights, k=40):
                if p not in chosen and spent + costs[p] <= BUDGET:
                    chosen.add(p)
                    spent += costs[p]
        lines.append(f"{v};{','.join(str(p) for p in sorted(chosen))}")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
