#!/usr/bin/env python3
"""Generates random approval elections and records what pabutools 1.2.3 selects on each,
for contracts/tests/pabutools.rs to compare with Acta's tallies.

Small electorates with large costs: each voter's share of the budget is small beside a
project's cost, so the Add1 completions take thousands of steps (more than the 2,000 an
earlier version of Acta stopped at).

    python3 -m pip install --target /tmp/pabu pabutools==1.2.3
    PYTHONPATH=/tmp/pabu python3 scripts/pabutools_compare.py \
        --out contracts/testdata/pabutools-random.json --count 40 --seed 19

The rules are configured as docs/tally-rules.md says they correspond:
  greedy               greedy_utilitarian_welfare with Cost_Sat (gain per cost = approvals)
  mes                  method_of_equal_shares with Cost_Sat
  mes-add1             exhaustion_by_budget_increase(mes, budget_step=n, exhaustive_stop=False)
  mes-add1-exhaustive  exhaustion_by_budget_increase(mes, budget_step=n, exhaustive_stop=True)
each with ties broken as Acta's `votes-then-cost` profile: more approvals, then lower
cost, then the lower id. Instances whose supported projects all fit the budget are not
generated: there pabutools' Add1 and Acta's differ by design (docs/tally-rules.md, 3.3).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time

from pabutools.election import Cost_Sat, parse_pabulib
from pabutools.rules import (
    exhaustion_by_budget_increase,
    greedy_utilitarian_welfare,
    method_of_equal_shares,
)
from pabutools.tiebreaking import TieBreakingRule


def instance(rng: random.Random, index: int) -> tuple[str, int]:
    """A random election as .pb text, and its budget."""
    while True:
        m = rng.randint(4, 18)
        n = rng.randint(20, 400)
        budget = rng.randint(20_000, 500_000)
        costs = [rng.randint(budget // 40 + 1, budget // 2) for _ in range(m)]
        popularity = [rng.uniform(0.05, 0.6) for _ in range(m)]
        votes = []
        for _ in range(n):
            chosen = [p for p in range(m) if rng.random() < popularity[p]]
            if not chosen:
                chosen = [rng.randrange(m)]
            votes.append(chosen)
        supported = {p for v in votes for p in v}
        if sum(costs[p] for p in supported) > budget:
            break
    lines = [
        "META",
        "key;value",
        f"description;random instance {index}",
        f"num_projects;{m}",
        f"num_votes;{n}",
        f"budget;{budget}",
        "vote_type;approval",
        "PROJECTS",
        "project_id;cost;name",
    ]
    lines += [f"{p};{c};project {p}" for p, c in enumerate(costs)]
    lines += ["VOTES", "voter_id;vote"]
    lines += [f"{i};{','.join(str(p) for p in v)}" for i, v in enumerate(votes)]
    return "\n".join(lines) + "\n", budget


def tally(pb_text: str) -> dict[str, list[str]]:
    with tempfile.NamedTemporaryFile("w", suffix=".pb", delete=False) as f:
        f.write(pb_text)
        path = f.name
    inst, profile = parse_pabulib(path)
    ties = TieBreakingRule(
        lambda i, prof, p: (-prof.approval_score(p), p.cost, int(p.name))
    )
    n = profile.num_ballots()
    mes = {"sat_class": Cost_Sat, "tie_breaking": ties}
    outcomes = {
        "greedy": greedy_utilitarian_welfare(
            inst, profile, sat_class=Cost_Sat, tie_breaking=ties
        ),
        "mes": method_of_equal_shares(inst, profile, **mes),
        "mes-add1": exhaustion_by_budget_increase(
            inst, profile, method_of_equal_shares, dict(mes),
            budget_step=n, exhaustive_stop=False,
        ),
        "mes-add1-exhaustive": exhaustion_by_budget_increase(
            inst, profile, method_of_equal_shares, dict(mes),
            budget_step=n, exhaustive_stop=True,
        ),
    }
    return {
        rule: sorted((p.name for p in outcome), key=int)
        for rule, outcome in outcomes.items()
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cases = []
    for i in range(args.count):
        text, budget = instance(rng, i)
        started = time.monotonic()
        expected = tally(text)
        took = time.monotonic() - started
        print(f"instance {i}: budget {budget}, pabutools {took:.1f} s", file=sys.stderr)
        cases.append({"name": f"random-{i}", "pb": text, "expected": expected,
                      "pabutools_seconds": round(took, 2)})
    with open(args.out, "w") as f:
        json.dump({"source": "scripts/pabutools_compare.py", "pabutools": "1.2.3",
                   "seed": args.seed, "cases": cases}, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
