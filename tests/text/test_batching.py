"""Windows for long sentences, length-bucketed sub-batches, and stitching windows back."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_trf.text.batching import Window, make_batches, plan_windows, stitch

# --------------------------------------------------------------------------------------------
# plan_windows
# --------------------------------------------------------------------------------------------


def check_windows(
    windows: list[Window],
    sentence: int,
    n_content: int,
    n_prefix: int,
    n_suffix: int,
    max_length: int,
    overlap: int,
) -> None:
    capacity = max_length - n_prefix - n_suffix
    assert windows
    for w in windows:
        assert w.sentence == sentence
        assert (w.n_prefix, w.n_suffix) == (n_prefix, n_suffix)
        assert w.length == n_prefix + (w.stop - w.start) + n_suffix
        assert w.length <= max_length
        assert 0 <= w.start <= w.keep_start <= w.keep_stop <= w.stop <= n_content
    # the windows cover [0, n_content), first to last
    assert windows[0].start == 0
    assert windows[-1].stop == n_content
    # keep ranges partition [0, n_content), in order, none empty unless there is no content
    assert windows[0].keep_start == 0
    assert windows[-1].keep_stop == n_content
    for a, b in itertools.pairwise(windows):
        assert a.keep_stop == b.keep_start
        assert a.start < b.start and a.stop < b.stop
    if n_content:
        assert all(w.keep_stop > w.keep_start for w in windows)
    owned = [i for w in windows for i in range(w.keep_start, w.keep_stop)]
    assert owned == list(range(n_content))

    if n_content <= capacity:
        assert len(windows) == 1
        assert (windows[0].start, windows[0].stop) == (0, n_content)
        return
    assert len(windows) > 1
    # full windows; consecutive ones overlap by the requested amount, capped at capacity // 2
    # (the last one is aligned on the end, so it may overlap its neighbour more, never less)
    wanted = min(max(overlap, 0), capacity // 2)
    for w in windows:
        assert w.stop - w.start == capacity
        assert w.length == max_length
    overlaps = [a.stop - b.start for a, b in itertools.pairwise(windows)]
    assert all(o == wanted for o in overlaps[:-1])
    assert wanted <= overlaps[-1] < capacity
    # each content position is owned by a window where it sits furthest from a cut edge
    # (an edge that is the sentence's own start/end is no cut)
    for i in range(n_content):

        def depth(w: Window, i: int = i) -> float:
            left = i - w.start if w.start > 0 else np.inf
            right = w.stop - 1 - i if w.stop < n_content else np.inf
            return min(left, right)

        holders = [w for w in windows if w.start <= i < w.stop]
        owner = next(w for w in windows if w.keep_start <= i < w.keep_stop)
        assert depth(owner) == max(depth(w) for w in holders)


@given(
    sentence=st.integers(0, 5),
    n_content=st.integers(0, 300),
    n_prefix=st.integers(0, 3),
    n_suffix=st.integers(0, 3),
    max_length=st.integers(1, 80),
    overlap=st.integers(-5, 100),
)
@settings(max_examples=300, deadline=None)
def test_plan_windows_properties(
    sentence: int, n_content: int, n_prefix: int, n_suffix: int, max_length: int, overlap: int
) -> None:
    if max_length - n_prefix - n_suffix < 1:
        with pytest.raises(ValueError):
            plan_windows(sentence, n_content, n_prefix, n_suffix, max_length, overlap)
        return
    windows = plan_windows(sentence, n_content, n_prefix, n_suffix, max_length, overlap)
    check_windows(windows, sentence, n_content, n_prefix, n_suffix, max_length, overlap)


def test_plan_windows_hand_made() -> None:
    # capacity 4, overlap 1 -> stride 3 over 10 content pieces: [0,4) [3,7) [6,10)
    ws = plan_windows(0, 10, 1, 1, 6, 1)
    assert [(w.start, w.stop) for w in ws] == [(0, 4), (3, 7), (6, 10)]
    # the one shared piece of each overlap goes to the left window's side of the middle
    assert [(w.keep_start, w.keep_stop) for w in ws] == [(0, 3), (3, 6), (6, 10)]
    # short sentence: exactly one window, all of it kept
    (only,) = plan_windows(2, 3, 1, 1, 6, 1)
    assert (only.sentence, only.start, only.stop, only.keep_start, only.keep_stop) == (
        2,
        0,
        3,
        0,
        3,
    )
    assert only.length == 5


@pytest.mark.parametrize(
    ("n_prefix", "n_suffix", "max_length"), [(1, 1, 2), (0, 2, 2), (2, 0, 1), (0, 0, 0), (3, 3, 5)]
)
def test_plan_windows_too_short_for_boundary_tokens(
    n_prefix: int, n_suffix: int, max_length: int
) -> None:
    with pytest.raises(ValueError):
        plan_windows(0, 10, n_prefix, n_suffix, max_length, 0)


# --------------------------------------------------------------------------------------------
# make_batches
# --------------------------------------------------------------------------------------------


def check_batches(
    lengths: list[int], budget: int, batches: list[list[int]], greedy: bool = True
) -> None:
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every index exactly once
    assert all(b for b in batches)
    for b in batches:
        if len(b) > 1:
            assert len(b) * max(lengths[i] for i in b) <= budget
        ls = [lengths[i] for i in b]
        assert ls == sorted(ls)  # ascending length inside a batch
    # the batches follow one sorted order of the lengths
    assert [lengths[i] for i in flat] == sorted(lengths)
    # greedy: the next batch's first sequence would not have fitted into the previous batch
    for a, b in itertools.pairwise(batches if greedy else []):
        grown = [*a, b[0]]
        assert len(grown) * max(lengths[i] for i in grown) > budget


@given(
    lengths=st.lists(st.integers(0, 120), max_size=60),
    budget=st.integers(1, 600),
)
@settings(max_examples=200, deadline=None)
def test_make_batches_properties(lengths: list[int], budget: int) -> None:
    batches = make_batches(lengths, budget)
    check_batches(lengths, budget, batches)
    # numpy input gives the same
    assert make_batches(np.asarray(lengths, dtype=np.int64), budget) == batches


def test_make_batches_hand_made() -> None:
    # sorted: idx 1 (2), 3 (3), 0 (5), 2 (9); budget 10: [1,3] (2*3=6), +0 -> 3*5=15 > 10
    assert make_batches([5, 2, 9, 3], 10) == [[1, 3], [0], [2]]
    # a sequence over the budget goes alone
    assert make_batches([50, 1, 1], 10) == [[1, 2], [0]]
    assert make_batches([], 10) == []


def _objective(lengths: list[int], batches: list[list[int]], batch_cost: float) -> float:
    return sum(len(b) * max(lengths[i] for i in b) + batch_cost for b in batches)


def _best_cuts_brute_force(lengths: list[int], budget: int, batch_cost: float) -> float:
    """Every way of cutting the sorted lengths into runs, within the budget (single sequences
    always allowed): the least objective."""
    xs = sorted(lengths)
    best = float("inf")
    for mask in range(1 << max(len(xs) - 1, 0)):
        cuts = [0] + [k + 1 for k in range(len(xs) - 1) if mask >> k & 1] + [len(xs)]
        runs = [xs[a:b] for a, b in itertools.pairwise(cuts)]
        if any(len(r) > 1 and len(r) * r[-1] > budget for r in runs):
            continue
        best = min(best, sum(len(r) * r[-1] + batch_cost for r in runs))
    return best


@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=9),
    budget=st.integers(1, 150),
    batch_cost=st.sampled_from([0.0, 5.0, 32.0, 200.0]),
)
@settings(max_examples=300, deadline=None)
def test_make_batches_optimal_cuts_are_optimal(
    lengths: list[int], budget: int, batch_cost: float
) -> None:
    batches = make_batches(lengths, budget, batch_cost)
    check_batches(lengths, budget, batches, greedy=False)
    assert _objective(lengths, batches, batch_cost) == pytest.approx(
        _best_cuts_brute_force(lengths, budget, batch_cost)
    )


@given(
    lengths=st.lists(st.integers(0, 120), max_size=80),
    budget=st.integers(1, 600),
    batch_cost=st.floats(0, 100),
)
@settings(max_examples=200, deadline=None)
def test_make_batches_optimal_cuts_never_cost_more_than_greedy(
    lengths: list[int], budget: int, batch_cost: float
) -> None:
    optimal = make_batches(lengths, budget, batch_cost)
    check_batches(lengths, budget, optimal, greedy=False)
    greedy = make_batches(lengths, budget)
    assert (
        _objective(lengths, optimal, batch_cost) <= _objective(lengths, greedy, batch_cost) + 1e-6
    )


def _cuts_searched_afresh(lengths: list[int], budget: int, batch_cost: float) -> list[list[int]]:
    """The same dynamic programme, each window's best start searched afresh (the first of
    ties): what the monotone queue of ``_optimal_cuts`` must reproduce, cut for cut."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    xs = [lengths[i] for i in order]
    best, cut = [0.0] * (len(xs) + 1), [0] * (len(xs) + 1)
    for j in range(1, len(xs) + 1):
        m = xs[j - 1]
        lo = max(0, j - max(budget // m, 1)) if m > 0 else 0
        k = min(range(lo, j), key=lambda i: best[i] - i * m)
        best[j], cut[j] = best[k] - k * m + j * m + batch_cost, k
    runs, j = [], len(xs)
    while j > 0:
        runs.append(order[cut[j] : j])
        j = cut[j]
    return runs[::-1]


@given(
    lengths=st.lists(st.integers(0, 120), max_size=120),
    budget=st.integers(1, 2000),
    batch_cost=st.sampled_from([0.0, 5.0, 32.0, 200.0]),
)
@settings(max_examples=200, deadline=None)
def test_optimal_cuts_are_those_of_each_window_searched_afresh(
    lengths: list[int], budget: int, batch_cost: float
) -> None:
    """The queue gives the very cuts of searching every window again (ties: the first start),
    through runs of equal lengths, windows sliding and lengths of zero."""
    assert make_batches(lengths, budget, batch_cost) == _cuts_searched_afresh(
        lengths, budget, batch_cost
    )


def test_make_batches_optimal_cuts_hand_made() -> None:
    # sorted 2,2,2,9,9 (indices 0,2,4,1,3); budget 100. Greedy: one block 5 x 9 = 45.
    lengths = [2, 9, 2, 9, 2]
    assert make_batches(lengths, 100) == [[0, 2, 4, 1, 3]]
    # cost 10 per sub-batch: 3 x 2 + 10 + 2 x 9 + 10 = 44 < 45 + 10: two sub-batches
    assert make_batches(lengths, 100, 10.0) == [[0, 2, 4], [1, 3]]
    # cost 30: one sub-batch (75) beats two (84)
    assert make_batches(lengths, 100, 30.0) == [[0, 2, 4, 1, 3]]
    with pytest.raises(ValueError, match="batch_cost"):
        make_batches(lengths, 100, -1.0)


@pytest.mark.parametrize("budget", [0, -1, -100])
def test_make_batches_invalid_budget(budget: int) -> None:
    with pytest.raises(ValueError):
        make_batches([1, 2, 3], budget)


def _padding_efficiency(lengths: np.ndarray, batches: list[list[int]]) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return real / padded


def _greedy_in_order(lengths: np.ndarray, order: np.ndarray, budget: int) -> list[list[int]]:
    """A reference grouping that keeps the given order and respects the same budget."""
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order.tolist():
        if cur and (len(cur) + 1) * max(int(lengths[cur].max()), int(lengths[i])) > budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


@pytest.mark.parametrize("seed", range(6))
def test_make_batches_pads_less_than_random_grouping(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 200, size=400)
    budget = int(rng.choice([400, 1000, 4000]))
    batches = make_batches(lengths, budget)
    check_batches(lengths.tolist(), budget, batches)
    ours = _padding_efficiency(lengths, batches)
    random_grouping = _greedy_in_order(lengths, rng.permutation(len(lengths)), budget)
    theirs = _padding_efficiency(lengths, random_grouping)
    assert ours > theirs
    assert ours > 0.85  # sorted uniform lengths pad little (random grouping: ~0.5-0.75)
    # and it does not buy that with many more batches than the random grouping
    assert len(batches) <= len(random_grouping)


# --------------------------------------------------------------------------------------------
# stitch
# --------------------------------------------------------------------------------------------


def _synthetic_rows(windows: list[Window]) -> list[np.ndarray]:
    """Per window: col 0 = position in the sentence (prefix rows first), col 1 = window id,
    col 2 = a value unique to (window, boundary row) so that means can be checked."""
    rows = []
    for k, w in enumerate(windows):
        p, q = w.n_prefix, w.n_suffix
        n = w.stop - w.start
        r = np.zeros((p + n + q, 3), dtype=np.float64)
        r[:p, 0] = np.arange(p)
        r[p : p + n, 0] = p + np.arange(w.start, w.stop)
        r[p + n :, 0] = np.arange(q) + 10_000
        r[:, 1] = k
        r[:p, 2] = 100.0 * k + np.arange(p)
        r[p + n :, 2] = 1000.0 * k + 7 * np.arange(q)
        rows.append(r)
    return rows


@given(
    n_content=st.integers(0, 200),
    n_prefix=st.integers(0, 3),
    n_suffix=st.integers(0, 3),
    extra=st.integers(1, 40),
    overlap=st.integers(0, 30),
)
@settings(max_examples=200, deadline=None)
def test_stitch_synthetic(
    n_content: int, n_prefix: int, n_suffix: int, extra: int, overlap: int
) -> None:
    max_length = n_prefix + n_suffix + extra
    windows = plan_windows(0, n_content, n_prefix, n_suffix, max_length, overlap)
    rows = _synthetic_rows(windows)
    out = stitch(windows, rows)
    p, q = n_prefix, n_suffix
    assert out.shape == (p + n_content + q, 3)
    if len(windows) == 1:
        np.testing.assert_array_equal(out, rows[0])
        return
    for i in range(n_content):
        owner = [k for k, w in enumerate(windows) if w.keep_start <= i < w.keep_stop]
        assert len(owner) == 1
        assert out[p + i, 0] == p + i
        assert out[p + i, 1] == owner[0]
    # boundary rows: the mean over all windows
    for j in range(p):
        np.testing.assert_allclose(out[j, 2], np.mean([100.0 * k + j for k in range(len(rows))]))
    for j in range(q):
        np.testing.assert_allclose(
            out[p + n_content + j, 2], np.mean([1000.0 * k + 7 * j for k in range(len(rows))])
        )
        assert out[p + n_content + j, 0] == 10_000 + j


def test_stitch_single_window_returns_rows_unchanged() -> None:
    (w,) = plan_windows(0, 5, 1, 2, 16, 4)
    rows = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    out = stitch([w], [rows])
    assert out.dtype == rows.dtype
    np.testing.assert_array_equal(out, rows)
    assert out is not rows


def test_stitch_hand_made() -> None:
    # 6 content pieces, [CLS] + [SEP], capacity 4, overlap 2 -> windows [0,4) [2,6)
    ws = plan_windows(0, 6, 1, 1, 6, 2)
    assert [(w.start, w.stop, w.keep_start, w.keep_stop) for w in ws] == [
        (0, 4, 0, 3),
        (2, 6, 3, 6),
    ]
    r0 = np.array([[-1.0], [0.0], [1.0], [2.0], [3.0], [-10.0]])
    r1 = np.array([[-3.0], [102.0], [103.0], [104.0], [105.0], [-20.0]])
    out = stitch(ws, [r0, r1])
    np.testing.assert_array_equal(out[:, 0], [-2.0, 0.0, 1.0, 2.0, 103.0, 104.0, 105.0, -15.0])


# --------------------------------------------------------------------------------------------
# End to end with a real tiny model
# --------------------------------------------------------------------------------------------

_LONG = (
    "Apple shares rose on the news and the quick brown fox jumps over the lazy dog while "
    "numbers like 3.14159 appear in technical text, café naïve résumé façade São Paulo, "
    "東京は日本の首都です and emoji are fun 😀🎉 too"
)


def test_windows_through_a_real_model(tiny_dir: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from stream_trf.model.runner import TransformerRunner

    tok = AutoTokenizer.from_pretrained(str(tiny_dir), split_special_tokens=True)
    enc = tok(_LONG, return_special_tokens_mask=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    special = np.asarray(enc["special_tokens_mask"], dtype=bool)
    content_pos = np.flatnonzero(~special)
    p = int(content_pos[0])
    q = len(ids) - int(content_pos[-1]) - 1
    assert content_pos.tolist() == list(range(p, len(ids) - q))  # content is contiguous
    content = ids[p : len(ids) - q]
    n_content = len(content)
    max_length = 16
    assert n_content > 3 * max_length, "the sentence must need several windows"

    windows = plan_windows(0, n_content, p, q, max_length, overlap=5)
    assert len(windows) >= 4
    runner = TransformerRunner(tiny_dir, device="cpu")
    inputs = [
        np.concatenate([ids[:p], content[w.start : w.stop], ids[len(ids) - q :]]) for w in windows
    ]
    per_window = [runner.predict([x], [None])[0].last_hidden_state for x in inputs]

    # the runner's rows are the HF model's own on that window, alone and unpadded
    model = AutoModel.from_pretrained(str(tiny_dir)).eval()
    with torch.no_grad():
        for x, rows in zip(inputs, per_window):
            ref = model(input_ids=torch.from_numpy(x)[None]).last_hidden_state[0].numpy()
            assert rows.shape == ref.shape == (len(x), runner.width)
            np.testing.assert_allclose(rows, ref, rtol=1e-4, atol=1e-4)

    out = stitch(windows, per_window)
    assert out.shape == (p + n_content + q, runner.width)
    for w, rows in zip(windows, per_window):
        for i in range(w.keep_start, w.keep_stop):
            np.testing.assert_array_equal(out[p + i], rows[p + i - w.start])
    np.testing.assert_allclose(out[:p], np.mean([r[:p] for r in per_window], axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        out[p + n_content :], np.mean([r[len(r) - q :] for r in per_window], axis=0), rtol=1e-6
    )
    # windows differ in context, so rows of shared positions differ between windows: stitching
    # really has to pick the right one (otherwise this test could not tell)
    a, b = windows[0], windows[1]
    i = b.start  # in both windows
    assert not np.allclose(per_window[0][p + i - a.start], per_window[1][p + i - b.start])


@given(
    lengths=st.lists(st.integers(0, 60), min_size=100, max_size=400),
    budget=st.sampled_from([6_000, 32_000]),
    batch_cost=st.sampled_from([0.0, 32.0, 200.0]),
)
@settings(max_examples=40, deadline=None)
def test_optimal_cuts_over_a_gpus_budget_are_those_of_each_window_searched_afresh(
    lengths: list[int], budget: int, batch_cost: float
) -> None:
    """A GPU's budget: windows of hundreds of starts, rebuilt in numpy, give the same cuts."""
    assert make_batches(lengths, budget, batch_cost) == _cuts_searched_afresh(
        lengths, budget, batch_cost
    )
