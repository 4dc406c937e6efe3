#!/usr/bin/env python3
"""Reference implementation of the participatory-budget tallies specified in
docs/tally-rules.md (standard library only, exact rational arithmetic).

Usage:
    python3 scripts/reference_tally.py FILE.pb --rule mes|mes-add1|mes-add1-exhaustive|greedy
            [--json] [--trace]

Rules (see docs/tally-rules.md for the normative text):
  greedy               approval greedy: projects by (approvals desc, cost asc, id asc), each
                       taken if it still fits the remaining budget.
  mes                  Method of Equal Shares, cost utilities, endowment budget/n, no completion.
  mes-add1             MES + "Add1" completion: endowment budget/n + k for k = 0, 1, 2, ...;
                       keep the last outcome whose total cost fits the real budget (stop at
                       the first k+1 whose outcome does not fit).
  mes-add1-exhaustive  as mes-add1, but also stop (and return the current outcome) as soon as
                       the outcome is exhaustive: no unselected project fits the remaining real
                       budget (pabutools 1.2.3 exhaustion_by_budget_increase semantics).

This script is the oracle for the Rust implementation's test expectations; it favours
clarity and exactness (fractions.Fraction everywhere money is divided) over speed, but
groups identical ballots and voters with identical budget histories so that the few
hundred MES runs of the Add1 completion stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction


# ----------------------------------------------------------------------------------------
# Parsing (the pabulib subset of docs/tally-rules.md, section 1)
# ----------------------------------------------------------------------------------------

class PbError(Exception):
    """A parse or validation error; `line` is the 1-based physical line number (or None)."""

    def __init__(self, line, msg):
        super().__init__(f"line {line}: {msg}" if line is not None else msg)
        self.line = line


def split_fields(text: str, lineno: int) -> list[str]:
    """Split one line on ';' honouring double-quoted fields ("" is an escaped quote)."""
    fields = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            # quoted field: runs to the next lone '"', which must end the field
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise PbError(lineno, "unterminated quoted field")
                ch = text[i]
                if ch == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(ch)
                i += 1
            fields.append("".join(buf))
            if i == n:
                return fields
            if text[i] != ';':
                raise PbError(lineno, "unexpected character after closing quote")
            i += 1
        else:
            j = text.find(';', i)
            end = n if j < 0 else j
            field = text[i:end]
            if '"' in field:
                raise PbError(lineno, "double quote inside an unquoted field")
            fields.append(field)
            if j < 0:
                return fields
            i = j + 1


def parse_uint(s: str, lineno: int, what: str) -> int:
    if not s or not all('0' <= c <= '9' for c in s):
        raise PbError(lineno, f"{what} must be a non-negative decimal integer, got {s!r}")
    v = int(s)
    if v >= 2 ** 64:
        raise PbError(lineno, f"{what} out of range: {s}")
    return v


class Election:
    def __init__(self):
        self.meta: dict[str, str] = {}
        self.budget = 0
        self.project_ids: list[str] = []        # in file order
        self.cost: dict[str, int] = {}
        self.votes_column: dict[str, int] = {}  # PROJECTS `votes` column, if present
        self.selected_column: dict[str, int] = {}
        self.ballots: list[frozenset[str]] = []  # one per voter, in file order
        self.approvals: dict[str, int] = {}      # computed from VOTES
        self.meta_line: dict[str, int] = {}      # META key -> line number
        self.project_line: dict[str, int] = {}   # project id -> line number


def parse_pb(path: str) -> Election:
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        raise PbError(None, f"file is not valid UTF-8: {e}")
    if text.startswith('\ufeff'):
        text = text[1:]
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()  # final line terminator
    e = Election()
    order = ['META', 'PROJECTS', 'VOTES']
    section = None       # index into order
    header = None        # header fields of current section
    header_line = None
    seen_voters = set()

    for idx, line in enumerate(lines):
        lineno = idx + 1
        if line.endswith('\r'):
            line = line[:-1]
        if line == '':
            continue  # blank lines are ignored
        if line in order:
            k = order.index(line)
            expected = 0 if section is None else section + 1
            if k != expected:
                raise PbError(lineno, f"section {line} out of order (expected {order[expected] if expected < 3 else 'end of file'})")
            if section is not None and header is None:
                raise PbError(lineno, f"section {order[section]} has no header row")
            section, header, header_line = k, None, lineno
            continue
        if section is None:
            raise PbError(lineno, "content before the META section")
        fields = split_fields(line, lineno)
        if header is None:
            header = fields
            if len(set(header)) != len(header):
                raise PbError(lineno, "duplicate column name in header")
            if section == 0 and header != ['key', 'value']:
                raise PbError(lineno, "META header must be exactly key;value")
            if section == 1:
                for col in ('project_id', 'cost'):
                    if col not in header:
                        raise PbError(lineno, f"PROJECTS header lacks column {col}")
            if section == 2:
                for col in ('voter_id', 'vote'):
                    if col not in header:
                        raise PbError(lineno, f"VOTES header lacks column {col}")
            continue
        if len(fields) != len(header):
            raise PbError(lineno, f"expected {len(header)} fields, found {len(fields)}")
        row = dict(zip(header, fields))
        if section == 0:
            key = row['key']
            if key in e.meta:
                raise PbError(lineno, f"duplicate META key {key!r}")
            e.meta[key] = row['value']
            e.meta_line[key] = lineno
        elif section == 1:
            pid = row['project_id']
            if pid == '' or ',' in pid:
                raise PbError(lineno, f"invalid project_id {pid!r}")
            if pid in e.cost:
                raise PbError(lineno, f"duplicate project_id {pid!r}")
            c = parse_uint(row['cost'], lineno, 'cost')
            if c == 0:
                raise PbError(lineno, f"project {pid}: cost must be positive")
            e.project_ids.append(pid)
            e.cost[pid] = c
            if 'votes' in row:
                e.votes_column[pid] = parse_uint(row['votes'], lineno, 'votes')
            if 'selected' in row:
                s = row['selected']
                if s not in ('0', '1'):
                    raise PbError(lineno, f"selected must be 0 or 1, got {s!r}")
                e.selected_column[pid] = int(s)
            e.project_line[pid] = lineno
        else:
            vid = row['voter_id']
            if vid == '':
                raise PbError(lineno, "empty voter_id")
            if vid in seen_voters:
                raise PbError(lineno, f"duplicate voter_id {vid!r}")
            seen_voters.add(vid)
            vote = row['vote']
            ids = vote.split(',') if vote != '' else []
            ballot = set()
            for pid in ids:
                if pid not in e.cost:
                    raise PbError(lineno, f"vote names unknown project {pid!r}")
                if pid in ballot:
                    raise PbError(lineno, f"vote names project {pid!r} twice")
                ballot.add(pid)
            e.ballots.append(frozenset(ballot))

    if section != 2:
        missing = order[0 if section is None else section + 1]
        raise PbError(len(lines), f"missing section {missing}")
    if header is None:
        raise PbError(len(lines), "section VOTES has no header row")

    ml = e.meta_line
    if 'budget' not in e.meta:
        raise PbError(None, "META lacks key budget")
    e.budget = parse_uint(e.meta['budget'], ml['budget'], 'budget')
    if e.budget == 0:
        raise PbError(ml['budget'], "budget must be positive")
    if e.meta.get('vote_type') != 'approval':
        raise PbError(ml.get('vote_type'), f"vote_type must be approval, got {e.meta.get('vote_type')!r}")
    if 'num_projects' in e.meta:
        v = parse_uint(e.meta['num_projects'], ml['num_projects'], 'num_projects')
        if v != len(e.project_ids):
            raise PbError(ml['num_projects'], f"num_projects is {v} but PROJECTS has {len(e.project_ids)} rows")
    if 'num_votes' in e.meta:
        v = parse_uint(e.meta['num_votes'], ml['num_votes'], 'num_votes')
        if v != len(e.ballots):
            raise PbError(ml['num_votes'], f"num_votes is {v} but VOTES has {len(e.ballots)} rows")
    if not e.ballots:
        raise PbError(None, "no voters")
    e.approvals = {p: 0 for p in e.project_ids}
    for b in e.ballots:
        for p in b:
            e.approvals[p] += 1
    pl = e.project_line
    for p, v in e.votes_column.items():
        if v != e.approvals[p]:
            raise PbError(pl[p], f"project {p}: votes column says {v} but VOTES has {e.approvals[p]} approvals")
    return e


# ----------------------------------------------------------------------------------------
# Tie-breaking (docs/tally-rules.md, section 2)
# ----------------------------------------------------------------------------------------

def id_key(pid: str):
    """Project-id order: all-digit ids numerically (then textually), before other ids,
    which compare by their UTF-8 bytes."""
    if pid.isascii() and pid.isdigit():
        return (0, int(pid), pid.encode())
    return (1, 0, pid.encode())


def tie_key(e: Election, pid: str):
    """Smaller is preferred: more approvals, then lower cost, then lower id."""
    return (-e.approvals[pid], e.cost[pid], id_key(pid))


# ----------------------------------------------------------------------------------------
# Greedy approval
# ----------------------------------------------------------------------------------------

def greedy(e: Election):
    remaining = e.budget
    chosen = []
    for p in sorted(e.project_ids, key=lambda p: tie_key(e, p)):
        if e.cost[p] <= remaining:
            chosen.append(p)
            remaining -= e.cost[p]
    return chosen


# ----------------------------------------------------------------------------------------
# Method of Equal Shares with cost utilities
# ----------------------------------------------------------------------------------------

class MesData:
    """Per-election precomputation shared by all MES runs: identical ballots are grouped
    (voters with the same ballot have the same budget at every step of MES)."""

    def __init__(self, e: Election):
        self.e = e
        counts: dict[frozenset, int] = {}
        for b in e.ballots:
            counts[b] = counts.get(b, 0) + 1
        self.group_ballots = list(counts.keys())
        self.group_mult = [counts[b] for b in self.group_ballots]
        self.supp_groups = {p: [] for p in e.project_ids}
        for g, b in enumerate(self.group_ballots):
            for p in b:
                self.supp_groups[p].append(g)
        self.n = len(e.ballots)
        # only projects with at least one supporter take part in MES (cost > 0 is enforced)
        self.candidates = [p for p in e.project_ids if e.approvals[p] > 0]
        self.tiekey = {p: tie_key(e, p) for p in e.project_ids}


def mes(d: MesData, endowment: Fraction, stats=None, trace=None):
    """One run of MES with cost utilities where every voter starts with `endowment`.

    Returns the selected projects in selection order. With cost utilities, a supporter of
    project c pays min(budget_i, rho * cost(c)); write q = rho * cost(c) for the per-supporter
    payment cap. c is affordable iff its supporters' total budget >= cost(c); then rho(c) is
    the smallest rho with sum_i min(budget_i, rho*cost(c)) = cost(c). The affordable project
    with the smallest rho is selected (ties: see tie_key).

    Implementation: voters are partitioned into classes; a class is the set of voters with
    the same ballot-group history (same set of selected projects they approve), so all
    members have the same budget. Each selection splits the classes of its supporters.
    """
    e = d.e
    cost = e.cost
    group_class = [0] * len(d.group_ballots)    # group -> class id
    class_budget = [endowment]                  # class id -> budget of each member
    # Lower bound on each candidate's rho. rho can only grow from round to round (budgets only
    # shrink), so the value computed in an earlier round is a valid lower bound; initially
    # rho >= 1/|supporters| (everyone pays an equal share cost/|S|, rho = that / cost).
    lower = {p: Fraction(1, e.approvals[p]) for p in d.candidates}
    remaining = set(d.candidates)
    selected = []
    while True:
        best_rho = None
        best = []
        for p in sorted(remaining, key=lambda p: (lower[p], d.tiekey[p])):
            if best_rho is not None and lower[p] > best_rho:
                break  # neither this nor any later project can beat (or tie) best_rho
            # supporters of p, aggregated by class
            cnt: dict[int, int] = {}
            for g in d.supp_groups[p]:
                c = group_class[g]
                cnt[c] = cnt.get(c, 0) + d.group_mult[g]
            c_p = cost[p]
            money = sum(class_budget[c] * m for c, m in cnt.items())
            if money < c_p:
                remaining.discard(p)  # budgets never grow: p is unaffordable for good
                continue
            # closed form: sort classes by budget; the poorest pay all they have while the
            # equal cap q = (cost - paid by poor) / (#rich) exceeds their budget.
            items = sorted(cnt.items(), key=lambda cm: class_budget[cm[0]])
            paid = Fraction(0)
            rich = e.approvals[p]
            q = None
            for c, m in items:
                b = class_budget[c]
                q = (c_p - paid) / rich
                if q <= b:
                    break
                paid += b * m
                rich -= m
            else:  # cannot happen when money >= cost
                raise AssertionError("affordable project without rich supporters")
            rho = q / c_p
            if stats is not None:
                stats['rho_evaluations'] = stats.get('rho_evaluations', 0) + 1
            lower[p] = rho
            if best_rho is None or rho < best_rho:
                best_rho, best = rho, [p]
            elif rho == best_rho:
                best.append(p)
        if not best:
            return selected
        if len(best) > 1 and stats is not None:
            stats.setdefault('ties', []).append(sorted(best, key=lambda p: d.tiekey[p]))
        w = min(best, key=lambda p: d.tiekey[p])
        q = best_rho * cost[w]
        if trace is not None:
            trace.append((w, best_rho, q))
        # payments: every supporter pays min(budget, q); classes of supporters split
        new_class: dict[int, int] = {}
        for g in d.supp_groups[w]:
            c = group_class[g]
            nc = new_class.get(c)
            if nc is None:
                b = class_budget[c]
                nc = len(class_budget)
                class_budget.append(b - q if b > q else Fraction(0))
                new_class[c] = nc
            group_class[g] = nc
        selected.append(w)
        remaining.discard(w)
        del lower[w]


def total_cost(e: Election, projects) -> int:
    return sum(e.cost[p] for p in projects)


def is_exhaustive(e: Election, projects) -> bool:
    """No unselected project (any project of the file, approved or not) fits the rest."""
    rest = e.budget - total_cost(e, projects)
    chosen = set(projects)
    return all(e.cost[p] > rest for p in e.project_ids if p not in chosen)


def mes_add1(d: MesData, exhaustive_stop: bool, log=None, stats=None):
    """Add1 completion. Endowment E_k = budget/n + k (k = 0, 1, ...), W_k = MES(E_k).
    Returns (W, k) for the final outcome. Every W_k is computed exactly (no shortcuts)."""
    e = d.e
    base = Fraction(e.budget, d.n)
    all_supported = set(d.candidates)
    k = 0
    w = mes(d, base + k, stats)
    if log is not None:
        log.append((k, total_cost(e, w), len(w)))
    while True:
        if exhaustive_stop and is_exhaustive(e, w):
            return w, k
        if set(w) == all_supported:
            return w, k  # nothing left to add; larger endowments cannot change the outcome
        w_next = mes(d, base + k + 1, stats)
        if log is not None:
            log.append((k + 1, total_cost(e, w_next), len(w_next)))
        if total_cost(e, w_next) > e.budget:
            return w, k
        w, k = w_next, k + 1


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------

def sorted_ids(ids):
    return sorted(ids, key=id_key)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('file')
    ap.add_argument('--rule', required=True,
                    choices=['mes', 'mes-add1', 'mes-add1-exhaustive', 'greedy'])
    ap.add_argument('--json', action='store_true', help='machine-readable output')
    ap.add_argument('--trace', action='store_true',
                    help='print each selection (project, rho, payment cap) of the final MES run')
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    try:
        e = parse_pb(args.file)
    except PbError as err:
        print(f"{args.file}: {err}", file=sys.stderr)
        return 2
    t_parse = time.perf_counter() - t0

    stats: dict = {}
    endowment = None
    k = None
    log = []
    if args.rule == 'greedy':
        winners = greedy(e)
    else:
        d = MesData(e)
        if args.rule == 'mes':
            k = 0
            winners = mes(d, Fraction(e.budget, d.n), stats)
        else:
            winners, k = mes_add1(d, args.rule == 'mes-add1-exhaustive', log, stats)
        endowment = Fraction(e.budget, d.n) + k
    elapsed = time.perf_counter() - t0

    trace = None
    if args.trace and endowment is not None:
        trace = []
        mes(MesData(e), endowment, None, trace)

    out = {
        'file': args.file,
        'rule': args.rule,
        'budget': e.budget,
        'voters': len(e.ballots),
        'projects': len(e.project_ids),
        'selected': sorted_ids(winners),
        'selection_order': winners,
        'num_selected': len(winners),
        'total_cost': total_cost(e, winners),
        'seconds': round(elapsed, 3),
        'parse_seconds': round(t_parse, 3),
    }
    if endowment is not None:
        out['k'] = k
        out['endowment'] = f"{endowment.numerator}/{endowment.denominator}"
        out['endowment_decimal'] = f"{float(endowment):.6f}"
        out['mes_runs'] = max(1, len(log))
        # tied smallest-rho sets met in any MES run (resolved by tie_key); [] = no ties
        out['mes_ties'] = stats.get('ties', [])
    if e.selected_column:
        official = {p for p, s in e.selected_column.items() if s == 1}
        out['matches_selected_column'] = official == set(winners)
        out['only_in_outcome'] = sorted_ids(set(winners) - official)
        out['only_in_selected_column'] = sorted_ids(official - set(winners))
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        for key, val in out.items():
            if isinstance(val, list):
                val = ' '.join(map(str, val)) if val and not isinstance(val[0], list) else val
            print(f"{key}: {val}")
        if trace:
            print("trace (project, rho, per-supporter cap):")
            for w, rho, q in trace:
                print(f"  {w}\trho={float(rho):.10g}\tcap={float(q):.6f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
