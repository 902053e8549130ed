"""The streams the monitor is replayed on: a stationary one, a switch to sections the reference
never saw, corrupted production labels; and the seeded split of the records they draw from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .figures import DRIFT_GROUPS
from .labelled import Record


class Cycle:
    """Endless draws from a pool: a shuffled pass, then another shuffled pass, and so on.

    Within a pass every record comes once (sampling without replacement); across passes records
    repeat. The monitor sees each draw as a new record (a fresh source offset), as it would see
    a document that was sent again."""

    def __init__(self, pool: Sequence[Record], rng: np.random.Generator) -> None:
        if not pool:
            raise ValueError("an empty pool")
        self.pool = pool
        self.rng = rng
        self._order: list[int] = []
        self.passes = 0

    def take(self, n: int) -> list[Record]:
        out = []
        for _ in range(n):
            if not self._order:
                self._order = self.rng.permutation(len(self.pool)).tolist()
                self.passes += 1
            out.append(self.pool[self._order.pop()])
        return out


@dataclass(frozen=True)
class Scenario:
    """A stream of windows: ``before`` windows like the reference, then ``after`` windows with
    the change (none for ``stationary``). ``share``: the share of each changed window's records
    drawn from the other sections (``switch``) or whose production label is replaced by a
    random other label (``corrupt``)."""

    name: str
    kind: Literal["stationary", "switch", "corrupt"]
    share: float = 0.0
    before: int = 0
    after: int = 0
    window_docs: int | None = None  # documents per window; None: the run's default

    @property
    def windows(self) -> int:
        return self.before + self.after

    @property
    def expected(self) -> tuple[str, ...]:
        """The alert groups that should fire after the change."""
        return {"stationary": (), "switch": DRIFT_GROUPS, "corrupt": ("agreement",)}[self.kind]

    @property
    def unexpected(self) -> tuple[str, ...]:
        """Alert groups that must stay quiet throughout (the text does not change when only
        production labels are corrupted)."""
        return DRIFT_GROUPS if self.kind in ("stationary", "corrupt") else ()


@dataclass
class Pools:
    """One seed's split of the enriched records."""

    reference: list[Record]  # the stream's first records: the monitor's reference
    home: list[Record]  # the reference's sections, disjoint from ``reference``
    other: list[Record]  # the sections the reference never saw
    home_sections: list[str] = field(default_factory=list)
    other_sections: list[str] = field(default_factory=list)


def make_pools(
    records: Sequence[Record], seed: int, home_sections: int, reference_size: int
) -> Pools:
    """Pick ``home_sections`` sections at random (seeded); shuffle their records; the first
    ``reference_size`` are the reference, the rest the home pool; the other sections' records
    are the other pool."""
    rng = np.random.default_rng([seed, 1])
    sections = sorted({r["section"] for r in records if r.get("section")})
    if not 0 < home_sections < len(sections):
        raise ValueError(f"home_sections must be in 1..{len(sections) - 1}, got {home_sections}")
    home_set = {str(s) for s in rng.choice(sections, size=home_sections, replace=False)}
    home = [r for r in records if r.get("section") in home_set]
    other = [r for r in records if r.get("section") and r["section"] not in home_set]
    home = [home[i] for i in rng.permutation(len(home))]
    if len(home) < reference_size * 2:
        raise ValueError(f"{len(home)} home records: too few for a {reference_size} reference")
    return Pools(
        reference=home[:reference_size],
        home=home[reference_size:],
        other=other,
        home_sections=sorted(home_set),
        other_sections=sorted(set(sections) - home_set),
    )


def corrupt(rec: Record, labels: Sequence[str], rng: np.random.Generator) -> Record:
    """The record with its production label replaced by a random other label; ``agrees`` is
    recomputed with the worker's rule (``stream.enrich``): equal to the transformer's label,
    when the classifier knows the label."""
    prod = dict(rec.get("production") or {})
    choices = [label for label in labels if label != prod.get("label")]
    new = str(choices[int(rng.integers(len(choices)))])
    prod["label"] = new
    prod["agrees"] = (new == rec.get("label")) if new in (rec.get("labels") or labels) else None
    return {**rec, "production": prod}


def scenario_windows(
    scenario: Scenario,
    pools: Pools,
    window_docs: int,
    rng: np.random.Generator,
) -> Iterator[list[Record]]:
    """The records of each window, in order. A changed window holds exactly
    ``round(share × window_docs)`` changed records, in random positions."""
    home = Cycle(pools.home, rng)
    other = Cycle(pools.other, rng) if pools.other else None
    labels = sorted({label for r in pools.reference for label in r.get("labels") or ()})
    if not labels:
        labels = sorted({str(r.get("label")) for r in pools.reference})
    changed = round(scenario.share * window_docs)
    for k in range(scenario.windows):
        after = scenario.kind != "stationary" and k >= scenario.before
        if after and scenario.kind == "switch":
            assert other is not None, "a switch needs other sections"
            batch = other.take(changed) + home.take(window_docs - changed)
            batch = [batch[i] for i in rng.permutation(len(batch))]
        else:
            batch = home.take(window_docs)
            if after and scenario.kind == "corrupt":
                hit = set(rng.choice(window_docs, size=changed, replace=False).tolist())
                batch = [corrupt(r, labels, rng) if i in hit else r for i, r in enumerate(batch)]
        yield batch


def default_scenarios(
    *,
    stationary_windows: int,
    before: int,
    after: int,
    switch_shares: Sequence[float],
    corrupt_shares: Sequence[float],
    stationary_window_docs: Sequence[int] = (),
) -> list[Scenario]:
    """The stationary stream (also with each of ``stationary_window_docs`` documents per
    window), a switch to the other sections at each share, and production labels corrupted at
    each share; each change comes after ``before`` windows and lasts ``after`` windows."""
    out = [Scenario("stationary", "stationary", 0.0, stationary_windows, 0)]
    out += [
        Scenario(f"stationary-{n}-docs", "stationary", 0.0, stationary_windows, 0, n)
        for n in stationary_window_docs
    ]
    out += [Scenario(f"switch-{s:.0%}", "switch", s, before, after) for s in switch_shares]
    out += [Scenario(f"corrupt-{s:.0%}", "corrupt", s, before, after) for s in corrupt_shares]
    return out
