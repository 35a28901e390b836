"""Gi* hotspots: the statistic against esda and exact enumeration, runs on PostGIS, the command.

Worlds are built around one resolution-9 cell in Xiangzhou County. Runs
with plain pseudo p-values that assert exact sets of hot or cold cells use
9,999 permutations, so the smallest pseudo p-value (0.0002) sits well
below the Benjamini-Hochberg thresholds. Runs with the default adaptive
p-values and with z_sim use 999. In all cases the same sets come out for
every seed from 0 to 29, not only for the fixed one used here. The
adaptive runs on 20,419 cells were checked for seeds 0 to 5 only.
"""
import datetime
import itertools
import logging
import warnings
from zoneinfo import ZoneInfo

import esda
import h3
import libpysal
import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command, load_command_class
from h3.api import basic_int as h3_int
from scipy import stats

from spatial.analysis import gistar, hotspots
from spatial.models import HotspotCell, HotspotLabel, HotspotRun, Ticket
from spatial.taxonomy import Category

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENTER = h3.str_to_int(h3.latlng_to_cell(23.75, 109.23, 9))
RECEIVED_AT = datetime.datetime(2024, 3, 1, 10, 0, tzinfo=SHANGHAI)


def disk(radius, center=CENTER):
    return set(h3_int.grid_disk(center, radius))


def study_arrays(counts):
    cells, values = hotspots.build_study_set(counts)
    return cells, values, gistar.neighbour_index(cells)


def esda_weights(neighbours):
    table = {i: [int(j) for j in row if j >= 0] for i, row in enumerate(neighbours)}
    return libpysal.weights.W(table, silence_warnings=True)


class TicketFactory:
    """Creates tickets at the centre of given resolution-9 cells, with consistent cells and location."""

    def __init__(self):
        self.number = 0

    def create(self, cell_counts, category=Category.FIRE_LANE, received_at=RECEIVED_AT, source="hotline"):
        tickets = []
        for cell, count in cell_counts.items():
            lat, lng = h3.cell_to_latlng(h3.int_to_str(cell))
            for _ in range(count):
                self.number += 1
                tickets.append(
                    Ticket(
                        source_system="test",
                        external_id=f"T{self.number:06d}",
                        source=source,
                        category=category,
                        received_at=received_at,
                        location=Point(lng, lat, srid=4326),
                        h3_fine=h3.str_to_int(h3.latlng_to_cell(lat, lng, 9)),
                        h3_coarse=h3.str_to_int(h3.latlng_to_cell(lat, lng, 7)),
                    )
                )
        Ticket.objects.bulk_create(tickets, batch_size=2000)

    def create_without_cell(self, count):
        for _ in range(count):
            self.number += 1
            Ticket.objects.create(source_system="test", external_id=f"T{self.number:06d}", received_at=RECEIVED_AT)


@pytest.fixture
def factory():
    return TicketFactory()


def hot_world():
    """Ten tickets in CENTER and its six neighbours, one in every other cell out to ring 6."""
    counts = dict.fromkeys(disk(6), 1)
    counts.update(dict.fromkeys(disk(1), 10))
    return counts


def cold_world():
    """One ticket in every cell out to ring 2 of CENTER, ten in every cell from ring 3 to ring 8."""
    counts = dict.fromkeys(disk(8), 10)
    counts.update(dict.fromkeys(disk(2), 1))
    return counts


def labels_by_cell(run):
    return dict(run.cells.values_list("h3_cell", "label"))


def ring_two_cells_touching_two_of_ring_one():
    """The six ring-2 cells of CENTER that share an edge with two ring-1 cells."""
    return {cell for cell in h3_int.grid_ring(CENTER, 2) if len(set(h3_int.grid_ring(cell, 1)) & disk(1)) == 2}


def clustered_disk(radius, cluster_centers, background_rate, peak_rate, cluster_radius, seed):
    """Draw Poisson counts on disk(radius): background_rate everywhere, plus peak_rate within cluster_radius of each center."""
    cells = np.array(sorted(disk(radius)), dtype=np.uint64)
    position = {cell: i for i, cell in enumerate(cells.tolist())}
    rate = np.full(len(cells), background_rate)
    for cluster_center in cluster_centers:
        for cell in h3_int.grid_disk(cluster_center, cluster_radius):
            rate[position[cell]] += peak_rate
    values = np.random.default_rng(seed).poisson(rate).astype(np.float64)
    return cells, values


# --- the statistic alone -------------------------------------------------------


def test_neighbour_index_interior_and_edge():
    cells = np.array(sorted(disk(1)), dtype=np.uint64)
    table = gistar.neighbour_index(cells)
    center_row = table[list(cells).index(CENTER)]
    assert sorted(cells[center_row].tolist()) == sorted(disk(1) - {CENTER})
    # A ring-1 cell touches CENTER and two other ring-1 cells.
    cardinality = (table >= 0).sum(axis=1)
    assert sorted(cardinality.tolist()) == [3, 3, 3, 3, 3, 3, 6]


def test_neighbour_index_pentagon_has_five():
    pentagon = h3.str_to_int(sorted(h3.get_pentagons(9))[0])
    cells = np.array(sorted(disk(1, pentagon)), dtype=np.uint64)
    table = gistar.neighbour_index(cells)
    assert len(cells) == 6
    assert (table[list(cells).index(pentagon)] >= 0).sum() == 5


def test_z_scores_match_esda():
    cells, _, neighbours = study_arrays(dict.fromkeys(disk(10), 1))
    values = np.random.default_rng(7).gamma(2.0, 1.0, len(cells))
    expected = esda.G_Local(values, esda_weights(neighbours), transform="B", star=True, permutations=0).Zs
    assert np.allclose(gistar.gi_star_z_scores(values, neighbours), expected, rtol=1e-10, atol=0)


def test_p_values_consistent_with_esda():
    # Continuous values have no ties, so esda's directed p-value doubled is
    # the same two-sided p-value. Both are Monte Carlo estimates from 999
    # draws, so each cell must agree within 5 standard errors of the
    # one-sided tail probability plus one draw's worth of discreteness.
    cells, _, neighbours = study_arrays(dict.fromkeys(disk(25), 1))
    values = np.random.default_rng(11).gamma(2.0, 1.0, len(cells))
    permutations = 999
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = esda.G_Local(
            values, esda_weights(neighbours), transform="B", star=True,
            permutations=permutations, n_jobs=1, seed=3,
        )
    expected = np.minimum(1.0, 2.0 * reference.p_sim)
    above, below = gistar.conditional_permutation_counts(values, neighbours, permutations, seed=5)
    observed = gistar.two_sided_pseudo_p(above, below, permutations)

    tail = np.clip((observed + expected) / 4.0, 1.0 / permutations, 0.5)
    standard_error = 2.0 * np.sqrt(2.0 * tail * (1.0 - tail) / permutations)
    outside = np.abs(observed - expected) > 5.0 * standard_error + 2.0 / (permutations + 1)
    assert outside.sum() == 0
    assert abs((observed < 0.05).mean() - (expected < 0.05).mean()) < 0.01


def test_permutation_counts_match_enumeration():
    # Eight cells: CENTER, its ring and one ring-2 cell. For every cell the
    # exact share of neighbour subsets at or above (and at or below) the
    # observed local sum is enumerated. 20,000 draws must agree within
    # 5 binomial standard errors, which fails if sampling is not uniform or
    # not without replacement.
    extra = next(iter(h3_int.grid_ring(CENTER, 2)))
    cells = np.array(sorted(disk(1) | {extra}), dtype=np.uint64)
    neighbours = gistar.neighbour_index(cells)
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
    permutations = 20_000
    above, below = gistar.conditional_permutation_counts(values, neighbours, permutations, seed=1)

    observed_sums = gistar.local_sums(values, neighbours)
    for i in range(len(cells)):
        k = int((neighbours[i] >= 0).sum())
        others = [values[j] for j in range(len(cells)) if j != i]
        sums = np.array([values[i] + sum(subset) for subset in itertools.combinations(others, k)])
        for share, count in (
            ((sums >= observed_sums[i]).mean(), above[i]),
            ((sums <= observed_sums[i]).mean(), below[i]),
        ):
            error = 5.0 * np.sqrt(share * (1.0 - share) / permutations) + 1e-9
            assert abs(count / permutations - share) <= error, (i, k, share, count)


def test_permutation_counts_same_seed_identical():
    cells, values, neighbours = study_arrays(hot_world())
    first = gistar.conditional_permutation_counts(values, neighbours, 999, seed=42)
    second = gistar.conditional_permutation_counts(values, neighbours, 999, seed=42)
    other_seed = gistar.conditional_permutation_counts(values, neighbours, 999, seed=43)
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other_seed[0])


def test_permutation_moments_match_enumeration():
    # Same eight cells as the enumeration of counts above. The mean of
    # 20,000 simulated local sums must lie within 5 standard errors
    # (sd / sqrt(P)) of the exact mean, and their standard deviation within
    # 5 standard errors of the exact one, sd * sqrt((kurtosis - 1) / (4 P)).
    extra = next(iter(h3_int.grid_ring(CENTER, 2)))
    cells = np.array(sorted(disk(1) | {extra}), dtype=np.uint64)
    neighbours = gistar.neighbour_index(cells)
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
    permutations = 20_000
    draws = gistar.conditional_permutations(values, neighbours, permutations, seed=1)

    for i in range(len(cells)):
        k = int((neighbours[i] >= 0).sum())
        others = [values[j] for j in range(len(cells)) if j != i]
        sums = np.array([values[i] + sum(subset) for subset in itertools.combinations(others, k)])
        exact_mean = sums.mean()
        exact_std = sums.std()
        kurtosis = ((sums - exact_mean) ** 4).mean() / exact_std**4
        mean_error = 5.0 * exact_std / np.sqrt(permutations)
        std_error = 5.0 * exact_std * np.sqrt((kurtosis - 1.0) / (4.0 * permutations))
        assert abs(draws.simulated_mean[i] - exact_mean) <= mean_error, (i, k, exact_mean)
        assert abs(draws.simulated_std[i] - exact_std) <= std_error, (i, k, exact_std)


def test_permutation_counts_unchanged_by_moments():
    cells, values, neighbours = study_arrays(hot_world())
    draws = gistar.conditional_permutations(values, neighbours, 999, seed=42)
    above, below = gistar.conditional_permutation_counts(values, neighbours, 999, seed=42)
    assert np.array_equal(draws.at_or_above, above)
    assert np.array_equal(draws.at_or_below, below)


def test_z_sim_p_values_consistent_with_esda():
    # Poisson counts on disk(20) with six clusters. esda and FireGrid draw
    # differently, so each z_sim is a Monte Carlo estimate from 9,999 draws.
    # The standard error of one estimate is taken as sqrt((1 + z**2) / P),
    # above the normal-theory sqrt((1 + z**2 / 2) / P) because these counts
    # are skewed. The difference of two estimates must then stay within 6
    # times sqrt(2 * (1 + z**2) / P). Eight seed pairs reached at most 4.1.
    cluster_centers = list(h3_int.grid_ring(CENTER, 10))[::10]
    cells, values = clustered_disk(20, cluster_centers, 0.5, 4.0, 2, seed=4)
    neighbours = gistar.neighbour_index(cells)
    permutations = 9999
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = esda.G_Local(
            values, esda_weights(neighbours), transform="B", star=True,
            permutations=permutations, n_jobs=1, seed=3, keep_simulations=True,
        )
    result = gistar.gi_star(values, neighbours, permutations, seed=5, p_method="z_sim")
    expected_p = 2.0 * reference.p_z_sim

    assert not np.isnan(result.z_sim).any()
    tolerance = 6.0 * np.sqrt(2.0 * (1.0 + result.z_sim**2) / permutations)
    outside = np.abs(result.z_sim - reference.z_sim) > tolerance
    assert outside.sum() == 0
    assert np.corrcoef(result.p_values, expected_p)[0, 1] > 0.998
    assert np.abs(result.p_values - expected_p).max() < 0.07
    # Both flag about the same number of cells after the same FDR step.
    esda_flagged = int((gistar.fdr_confidence(expected_p) > 0).sum())
    flagged = int((result.confidence > 0).sum())
    assert esda_flagged > 0
    assert abs(flagged - esda_flagged) <= 0.1 * esda_flagged


def test_simulated_z_scores_zero_spread_nan():
    observed = np.array([5.0, 5.0, 3.0, 0.7])
    mean = np.array([5.0, 4.0, 3.0, 0.7 + 2e-16])
    std = np.array([0.0, 0.5, 0.0, 4e-16])
    z_sim = gistar.simulated_z_scores(observed, mean, std)
    assert z_sim[1] == 2.0
    assert np.isnan(z_sim[[0, 2, 3]]).all()


def test_two_sided_normal_p():
    p_values = gistar.two_sided_normal_p(np.array([0.0, 1.959963984540054, -1.959963984540054, 40.0, np.nan]))
    assert np.allclose(p_values[:3], [1.0, 0.05, 0.05], rtol=1e-12, atol=0)
    assert 0.0 <= p_values[3] < 1e-300
    assert p_values[4] == 1.0


def test_assign_direction_z_sim_needs_agreeing_sign():
    z_scores = np.array([2.5, 2.5, -2.5, -2.5, np.nan, 2.5, 2.5])
    z_sim = np.array([3.0, -3.0, -3.0, 3.0, 3.0, np.nan, 3.0])
    confidence = np.array([95, 95, 95, 95, 95, 95, 0])
    direction = gistar.assign_direction_z_sim(z_scores, z_sim, confidence)
    assert direction.tolist() == [1, 0, -1, 0, 0, 0, 0]


def test_gi_star_z_sim_hot_world():
    # The six ring-2 cells touching two ring-1 cells have a local sum of
    # 1 + 10 + 10 + 1 + 1 + 1 + 1 = 25 against a mean of about 7.9. The
    # normal approximation puts their two-sided p-value near 2e-4, while
    # 200,000 draws put 0.67% of local sums at or above 25 (two-sided
    # 0.013), so z_sim flags them and pseudo p-values do not.
    cells, values, neighbours = study_arrays(hot_world())
    result = gistar.gi_star(values, neighbours, 999, seed=12345, p_method="z_sim")
    hot = set(cells[result.direction == 1].tolist())
    assert result.p_method == "z_sim"
    assert hot == disk(1) | ring_two_cells_touching_two_of_ring_one()
    assert (result.direction >= 0).all()
    assert set(result.confidence[result.direction == 1].tolist()) == {99}
    center = cells.tolist().index(CENTER)
    assert result.z_sim[center] > 10
    expected_p = 2.0 * stats.norm.sf(np.abs(result.z_sim))
    assert np.allclose(result.p_values, expected_p, rtol=1e-12, atol=0)


def test_gi_star_z_sim_large_set_flags_clusters():
    # 20,419 cells (disk(82)), Poisson background of 0.3 tickets and four
    # clusters of 19 cells with 3 more tickets per cell. With 999
    # permutations BH at 0.10 needs 409 cells at the pseudo p-value floor
    # 0.002, so pseudo flags nothing while z_sim flags the clusters. z_sim
    # also flags about 40 cells more than one ring outside the clusters,
    # the false discoveries that the shuffled-counts test below shows.
    ring = list(h3_int.grid_ring(CENTER, 40))
    cluster_centers = [ring[k * len(ring) // 4] for k in range(4)]
    cells, values = clustered_disk(82, cluster_centers, 0.3, 3.0, 2, seed=0)
    neighbours = gistar.neighbour_index(cells)
    cluster_cells = set().union(*(set(h3_int.grid_disk(center, 2)) for center in cluster_centers))

    z_sim = gistar.gi_star(values, neighbours, 999, seed=0, p_method="z_sim")
    pseudo = gistar.gi_star(values, neighbours, 999, seed=0, p_method="pseudo")

    hot = set(cells[z_sim.direction == 1].tolist())
    assert len(cells) == 20_419
    assert set(cluster_centers) <= hot
    assert len(hot & cluster_cells) >= 0.8 * len(cluster_cells)
    assert (z_sim.direction >= 0).all()
    assert gistar.fdr_min_rejections(len(cells), 999, 0.10) == 409
    assert (pseudo.p_values <= 0.002).sum() < 409
    assert (pseudo.direction == 0).all()


def large_clustered_world():
    """Return the cells, counts, neighbour table and cluster centers of the 20,419-cell world."""
    ring = list(h3_int.grid_ring(CENTER, 40))
    cluster_centers = [ring[k * len(ring) // 4] for k in range(4)]
    cells, values = clustered_disk(82, cluster_centers, 0.3, 3.0, 2, seed=0)
    return cells, values, gistar.neighbour_index(cells), cluster_centers


def test_gi_star_adaptive_large_set_flags_clusters():
    # The world of the z_sim test above, where pseudo with 999
    # permutations flags nothing. Adaptive refinement lowers the floor of
    # the cells near it to 0.00002. About two thirds of the 76 cluster cells
    # then pass (49 to 51 for seeds 0 to 5), and no cell more than one ring
    # outside a cluster does.
    cells, values, neighbours, cluster_centers = large_clustered_world()
    cluster_cells = set().union(*(set(h3_int.grid_disk(center, 2)) for center in cluster_centers))
    near_clusters = set().union(*(set(h3_int.grid_disk(center, 3)) for center in cluster_centers))

    result = gistar.gi_star(values, neighbours, 999, seed=0)

    hot = set(cells[result.direction == 1].tolist())
    assert result.p_method == "adaptive"
    assert set(cluster_centers) <= hot
    assert len(hot & cluster_cells) >= 0.6 * len(cluster_cells)
    assert hot <= near_clusters
    assert (result.direction >= 0).all()
    assert result.refinement_capped == 0
    assert result.p_values[result.direction == 1].max() < 0.002


@pytest.mark.parametrize(
    "p_method",
    [
        "adaptive",
        "pseudo",
        pytest.param(
            "z_sim",
            marks=pytest.mark.xfail(
                strict=True,
                reason="the normal approximation underestimates upper-tail p-values of skewed counts",
            ),
        ),
    ],
)
def test_gi_star_spatially_random_counts_flag_nothing(p_method):
    # The counts of the large clustered world, shuffled over the cells, so
    # no cluster exists and every flagged cell is a false discovery.
    cells, values, neighbours, _ = large_clustered_world()
    values = np.random.default_rng(1).permutation(values)
    result = gistar.gi_star(values, neighbours, 999, seed=0, p_method=p_method)
    assert (result.direction == 0).all()


def test_adaptive_p_values_valid_under_null():
    # On the shuffled counts each cell's null hypothesis holds, so the
    # share of p-values at or below u may exceed u only by sampling error
    # (3 binomial standard errors over 20,419 cells). Refined cells must
    # exist, or the check would only test the first stage.
    cells, values, neighbours, _ = large_clustered_world()
    values = np.random.default_rng(1).permutation(values)
    result = gistar.gi_star(values, neighbours, 999, seed=0)

    assert (result.final_permutations == 9999).sum() > 50
    assert (result.final_permutations == 99999).sum() > 5
    for u in (0.0005, 0.002, 0.01, 0.05):
        share = (result.p_values <= u).mean()
        assert share <= u + 3.0 * np.sqrt(u * (1.0 - u) / len(cells)), u


def test_gi_star_adaptive_hot_world():
    # The six ring-2 cells that z_sim flags have a two-sided permutation
    # p-value near 0.013 (200,000 draws, see test_gi_star_z_sim_hot_world),
    # too large to pass BH over 169 cells, so adaptive flags CENTER and
    # ring 1 only.
    cells, values, neighbours = study_arrays(hot_world())
    result = gistar.gi_star(values, neighbours, 999, seed=12345)
    hot = set(cells[result.direction == 1].tolist())
    assert hot == disk(1)
    assert (result.direction >= 0).all()
    assert set(result.confidence[result.direction == 1].tolist()) <= {90, 95, 99}
    assert set(result.final_permutations[result.direction == 1].tolist()) <= {9999, 99999}


def test_gi_star_adaptive_stages_match_pseudo_runs():
    # Each stage's p-values computed two ways: inside the adaptive run, and
    # by a plain pseudo run with that stage's size and seed on the cells
    # that reached it.
    seed = 12345
    cells, values, neighbours = study_arrays(hot_world())
    adaptive = gistar.gi_star(values, neighbours, 999, seed=seed)
    plain = gistar.gi_star(values, neighbours, 999, seed=seed, p_method="pseudo")
    stages = (999, 9999, 99999)
    final = adaptive.final_permutations

    # The first stage is a pseudo run with the run's own seed.
    first_stage = final == 999
    assert np.array_equal(adaptive.p_values[first_stage], plain.p_values[first_stage])
    assert np.array_equal(adaptive.z_sim, plain.z_sim, equal_nan=True)

    reached = np.flatnonzero(plain.p_values <= 2 * (gistar.ESCALATION_TAIL_DRAWS + 1) / 1000)
    for stage in (1, 2):
        assert len(reached) > 0, stage
        assert np.array_equal(reached, np.flatnonzero(final >= stages[stage])), stage
        above, below = gistar.conditional_permutation_counts(
            values, neighbours, stages[stage], gistar.refinement_seed(seed, stage), cells=reached
        )
        p_values = gistar.two_sided_pseudo_p(above, below, stages[stage])
        ends_here = final[reached] == stages[stage]
        assert np.array_equal(adaptive.p_values[reached[ends_here]], p_values[ends_here]), stage
        reached = reached[np.minimum(above, below) <= gistar.ESCALATION_TAIL_DRAWS]


def test_gi_star_adaptive_same_seed_identical():
    cells, values, neighbours = study_arrays(hot_world())
    first = gistar.gi_star(values, neighbours, 999, seed=42)
    second = gistar.gi_star(values, neighbours, 999, seed=42)
    other_seed = gistar.gi_star(values, neighbours, 999, seed=43)
    assert np.array_equal(first.p_values, second.p_values)
    assert np.array_equal(first.final_permutations, second.final_permutations)
    assert np.array_equal(first.direction, second.direction)
    assert not np.array_equal(first.p_values, other_seed.p_values)


def test_gi_star_adaptive_budget_refines_smallest_first():
    # A budget of three cells at 9,999 permutations: the three candidates
    # with the fewest draws in the smaller tail are refined, the others keep
    # their first-stage p-value and count as capped.
    cells, values, neighbours = study_arrays(hot_world())
    plain = gistar.gi_star(values, neighbours, 999, seed=3, p_method="pseudo")
    result = gistar.gi_star(values, neighbours, 999, seed=3, max_refinement_draws=3 * 9999)

    candidates = plain.p_values <= 2 * (gistar.ESCALATION_TAIL_DRAWS + 1) / 1000
    refined = result.final_permutations > 999
    assert candidates.sum() > 3
    assert refined.sum() == 3
    assert (result.final_permutations <= 9999).all()
    assert plain.p_values[refined].max() <= plain.p_values[candidates & ~refined].min()
    assert np.array_equal(result.p_values[~refined], plain.p_values[~refined])
    assert result.refinement_capped >= candidates.sum() - 3


def test_gi_star_adaptive_without_stages_equals_pseudo():
    cells, values, neighbours = study_arrays(hot_world())
    adaptive = gistar.gi_star(values, neighbours, 999, seed=4, refinement_permutations=())
    plain = gistar.gi_star(values, neighbours, 999, seed=4, p_method="pseudo")
    assert np.array_equal(adaptive.p_values, plain.p_values)
    assert np.array_equal(adaptive.direction, plain.direction)
    assert (adaptive.final_permutations == 999).all()


def test_resolve_refinement_permutations():
    assert gistar.resolve_refinement_permutations(999) == (9999, 99999)
    assert gistar.resolve_refinement_permutations(9999) == (99999,)
    assert gistar.resolve_refinement_permutations(99999) == ()
    assert gistar.resolve_refinement_permutations(99, [999, 5000]) == (999, 5000)
    for stages in ([999], [5000, 5000], [20000, 10000], [2.5e4], [True]):
        with pytest.raises(ValueError, match="refinement_permutations must be integers"):
            gistar.resolve_refinement_permutations(999, stages)


def test_gi_star_rejects_decreasing_stages():
    cells, values, neighbours = study_arrays(hot_world())
    with pytest.raises(ValueError, match=r"first stage 999\), got \[99999, 9999\]"):
        gistar.gi_star(values, neighbours, 999, seed=1, refinement_permutations=[99999, 9999])


def test_refinement_seed_distinct_and_stable():
    seeds = [gistar.refinement_seed(12345, stage) for stage in (1, 2, 3)]
    assert len(set(seeds) | {12345}) == 4
    assert seeds == [gistar.refinement_seed(12345, stage) for stage in (1, 2, 3)]
    assert gistar.refinement_seed(12346, 1) != seeds[0]
    with pytest.raises(ValueError, match="numbered from 1"):
        gistar.refinement_seed(12345, 0)


def test_permutation_counts_of_all_cells_match_default():
    cells, values, neighbours = study_arrays(hot_world())
    default = gistar.conditional_permutations(values, neighbours, 999, seed=6)
    explicit = gistar.conditional_permutations(values, neighbours, 999, seed=6, cells=np.arange(len(cells)))
    assert np.array_equal(default.at_or_above, explicit.at_or_above)
    assert np.array_equal(default.at_or_below, explicit.at_or_below)
    assert np.array_equal(default.simulated_mean, explicit.simulated_mean)


def test_permutation_counts_reject_cells_out_of_range():
    cells, values, neighbours = study_arrays(hot_world())
    with pytest.raises(ValueError, match=f"cells must be positions from 0 to {len(cells) - 1}"):
        gistar.conditional_permutations(values, neighbours, 99, seed=6, cells=[0, len(cells)])


def test_fdr_confidence_agrees_with_esda_fdr():
    # Continuous random p-values do not fall exactly on the
    # Benjamini-Hochberg line, the only place where esda.fdr's strict
    # inequality gives a different result.
    p_values = np.random.default_rng(2).beta(0.3, 4.0, 500)
    confidence = gistar.fdr_confidence(p_values)
    for level, alpha in gistar.CONFIDENCE_ALPHAS.items():
        cut_off = esda.fdr(p_values, alpha)
        assert np.array_equal(confidence >= level, p_values < cut_off), level


def test_fdr_confidence_rejects_on_the_line():
    # 10 of 50 p-values at 0.002: 10 * 0.01 / 50 = 0.002, so BH at 0.01 rejects them.
    p_values = np.array([0.002] * 10 + [0.9] * 40)
    confidence = gistar.fdr_confidence(p_values)
    assert confidence[:10].tolist() == [99] * 10
    assert confidence[10:].tolist() == [0] * 40


def test_fdr_min_rejections():
    # 2 / 1000 * 50,000 / 0.10 = 1,000 cells. 2 / 1000 * 19 / 0.10 = 0.38, so one cell.
    assert gistar.fdr_min_rejections(50_000, 999, 0.10) == 1000
    assert gistar.fdr_min_rejections(50_000, 9999, 0.10) == 100
    assert gistar.fdr_min_rejections(19, 999, 0.10) == 1
    assert gistar.fdr_min_rejections(0, 999, 0.10) == 1


def test_fdr_confidence_empty():
    assert gistar.fdr_confidence(np.array([])).tolist() == []


def test_assign_direction_needs_agreeing_tail():
    z_scores = np.array([2.5, 2.5, -2.5, -2.5, np.nan, 2.5])
    above = np.array([0, 990, 990, 0, 0, 0])
    below = np.array([990, 0, 0, 990, 990, 990])
    confidence = np.array([95, 95, 95, 95, 95, 0])
    direction = gistar.assign_direction(z_scores, above, below, confidence)
    assert direction.tolist() == [1, 0, -1, 0, 0, 0]


@pytest.mark.parametrize("p_method", gistar.P_METHODS)
def test_gi_star_islands_not_significant(p_method):
    far_away = h3.str_to_int(h3.latlng_to_cell(24.30, 110.05, 9))
    cells = np.array(sorted([CENTER, far_away]), dtype=np.uint64)
    neighbours = gistar.neighbour_index(cells)
    result = gistar.gi_star(np.array([50.0, 0.0]), neighbours, 999, seed=1, p_method=p_method)
    assert (neighbours < 0).all()
    assert np.isnan(result.z_scores).all()
    assert np.isnan(result.z_sim).all()
    assert result.p_values.tolist() == [1.0, 1.0]
    assert result.direction.tolist() == [0, 0]


@pytest.mark.parametrize("p_method", gistar.P_METHODS)
@pytest.mark.parametrize("value", [4.0, 0.3, 0.0])
def test_gi_star_constant_values_not_significant(p_method, value):
    # 0.3 repeated sums to values a few ulps apart, which must not count as spread.
    cells, _, neighbours = study_arrays(dict.fromkeys(disk(3), 1))
    values = np.full(len(cells), value)
    result = gistar.gi_star(values, neighbours, 999, seed=1, p_method=p_method)
    assert np.isnan(result.z_scores).all()
    assert np.isnan(result.z_sim).all()
    assert (result.p_values == 1.0).all()
    assert (result.direction == 0).all()
    assert (result.confidence == 0).all()


@pytest.mark.parametrize("p_method", gistar.P_METHODS)
def test_gi_star_zero_neighbourhoods_not_significant(p_method):
    # One busy cell among 1,260 zeros. Most zero neighbourhoods draw only
    # zeros (p = 1), and the rest draw the busy cell rarely, so their
    # z_sim is close to 0. Only the busy cell's own neighbourhood may be hot.
    cells, _, neighbours = study_arrays(dict.fromkeys(disk(19), 1))
    values = np.zeros(len(cells))
    values[cells.tolist().index(CENTER)] = 20.0
    result = gistar.gi_star(values, neighbours, 999, seed=1, p_method=p_method)
    zero_neighbourhood = gistar.local_sums(values, neighbours) == 0
    assert zero_neighbourhood.sum() == len(cells) - 7
    assert (result.direction[zero_neighbourhood] == 0).all()
    assert (result.p_values[zero_neighbourhood] > 0.5).all()
    assert (result.direction >= 0).all()


@pytest.mark.parametrize("p_method", gistar.P_METHODS)
def test_gi_star_empty(p_method):
    result = gistar.gi_star(np.array([]), np.empty((0, 6), dtype=np.int64), 999, seed=1, p_method=p_method)
    assert len(result.z_scores) == 0
    assert len(result.z_sim) == 0
    assert len(result.p_values) == 0
    assert len(result.direction) == 0


def test_gi_star_rejects_unknown_p_method():
    cells, values, neighbours = study_arrays(hot_world())
    with pytest.raises(ValueError, match="p_method must be one of adaptive, pseudo, z_sim, got 'exact'"):
        gistar.gi_star(values, neighbours, 999, seed=1, p_method="exact")


# --- counting tickets in the database ------------------------------------------


@pytest.mark.django_db
def test_counts_group_by_cell_and_skip_empty(factory):
    factory.create({CENTER: 3})
    neighbour = next(iter(h3_int.grid_ring(CENTER, 1)))
    factory.create({neighbour: 2})
    factory.create_without_cell(4)

    counts, without_cell = hotspots.count_tickets_by_cell(hotspots.build_query())
    assert counts == {CENTER: 3, neighbour: 2}
    assert without_cell == 4


@pytest.mark.django_db
def test_counts_filter_category_and_source(factory):
    factory.create({CENTER: 3}, category=Category.FIRE_LANE)
    factory.create({CENTER: 5}, category=Category.EBIKE_CHARGING)
    factory.create({CENTER: 7}, category=Category.EBIKE_CHARGING, source="iot")

    counts, _ = hotspots.count_tickets_by_cell(hotspots.build_query(category="ebike_charging"))
    assert counts == {CENTER: 12}
    counts, _ = hotspots.count_tickets_by_cell(hotspots.build_query(category="ebike_charging", source="iot"))
    assert counts == {CENTER: 7}


@pytest.mark.django_db
def test_counts_period_uses_shanghai_days(factory):
    # 2024-03-01 23:30 in Shanghai is 15:30 UTC, still 1 March locally.
    # 2024-03-02 00:30 in Shanghai is 16:30 UTC on 1 March, but 2 March locally.
    factory.create({CENTER: 1}, received_at=datetime.datetime(2024, 2, 29, 23, 59, tzinfo=SHANGHAI))
    factory.create({CENTER: 2}, received_at=datetime.datetime(2024, 3, 1, 0, 0, tzinfo=SHANGHAI))
    factory.create({CENTER: 4}, received_at=datetime.datetime(2024, 3, 1, 23, 30, tzinfo=SHANGHAI))
    factory.create({CENTER: 8}, received_at=datetime.datetime(2024, 3, 2, 0, 30, tzinfo=SHANGHAI))

    query = hotspots.build_query(received_from="2024-03-01", received_to=datetime.date(2024, 3, 1))
    assert hotspots.count_tickets_by_cell(query)[0] == {CENTER: 6}
    query = hotspots.build_query(received_from="2024-03-01")
    assert hotspots.count_tickets_by_cell(query)[0] == {CENTER: 14}
    query = hotspots.build_query(received_to="2024-03-01")
    assert hotspots.count_tickets_by_cell(query)[0] == {CENTER: 7}


@pytest.mark.django_db
@pytest.mark.parametrize("resolution", [8, 6, 0])
def test_counts_parents_match_h3(factory, resolution):
    counts = {cell: 1 + i % 3 for i, cell in enumerate(sorted(disk(4)))}
    factory.create(counts)
    expected = {}
    for cell, count in counts.items():
        parent = h3_int.cell_to_parent(cell, resolution)
        expected[parent] = expected.get(parent, 0) + count

    got, _ = hotspots.count_tickets_by_cell(hotspots.build_query(resolution=resolution))
    assert got == expected


@pytest.mark.django_db
def test_counts_coarse_reads_stored_column(factory):
    factory.create(hot_world())
    expected = {}
    for ticket in Ticket.objects.all():
        expected[ticket.h3_coarse] = expected.get(ticket.h3_coarse, 0) + 1

    got, _ = hotspots.count_tickets_by_cell(hotspots.build_query(resolution="coarse"))
    assert got == expected
    assert all(h3_int.get_resolution(cell) == 7 for cell in got)


# --- stored runs -----------------------------------------------------------------


@pytest.mark.django_db
def test_run_hot_cluster(factory):
    factory.create(hot_world())
    run = hotspots.run_hotspots(permutations=9999, p_method="pseudo")

    labels = labels_by_cell(run)
    hot = {cell for cell, label in labels.items() if label in hotspots.HOT_LABELS}
    cold = {cell for cell, label in labels.items() if label in hotspots.COLD_LABELS}
    assert hot == disk(1)
    assert cold == set()
    assert labels[CENTER] == HotspotLabel.HOT_95
    assert run.hot_count == 7
    assert run.cold_count == 0
    assert run.ticket_count == 7 * 10 + (len(disk(6)) - 7)
    assert run.cell_count == len(disk(7))
    assert run.tickets_without_cell == 0
    assert run.duration_s > 0


@pytest.mark.django_db
def test_run_hot_cluster_adaptive(factory):
    factory.create(hot_world())
    run = hotspots.run_hotspots()

    labels = labels_by_cell(run)
    hot = {cell for cell, label in labels.items() if label in hotspots.HOT_LABELS}
    cold = {cell for cell, label in labels.items() if label in hotspots.COLD_LABELS}
    # test_gi_star_adaptive_hot_world explains why ring 2 stays out.
    assert hot == disk(1)
    assert cold == set()
    assert run.hot_count == 7
    assert run.cold_count == 0
    assert run.params["p_method"] == "adaptive"
    assert run.params["refinement_permutations"] == [9999, 99999]
    # The hot cells were refined, so their p-values lie below the first-stage floor.
    hot_p_values = run.cells.filter(h3_cell__in=hot).values_list("p_value", flat=True)
    assert max(hot_p_values) < 2 / 1000


@pytest.mark.django_db
def test_run_hot_cluster_z_sim(factory):
    factory.create(hot_world())
    run = hotspots.run_hotspots(p_method="z_sim")

    labels = labels_by_cell(run)
    hot = {cell for cell, label in labels.items() if label in hotspots.HOT_LABELS}
    cold = {cell for cell, label in labels.items() if label in hotspots.COLD_LABELS}
    # test_gi_star_z_sim_hot_world explains the six ring-2 cells.
    assert hot == disk(1) | ring_two_cells_touching_two_of_ring_one()
    assert cold == set()
    assert {labels[cell] for cell in hot} == {HotspotLabel.HOT_99}
    assert run.hot_count == 13
    assert run.cold_count == 0
    assert run.params["p_method"] == "z_sim"


@pytest.mark.django_db
def test_run_stores_p_values_used_for_fdr(factory):
    factory.create(hot_world())
    run = hotspots.run_hotspots(seed=8)

    cells, values, neighbours = study_arrays(hot_world())
    expected = gistar.gi_star(values, neighbours, 999, seed=8, p_method="adaptive")
    stored = dict(run.cells.values_list("h3_cell", "p_value"))
    assert [stored[cell] for cell in cells.tolist()] == expected.p_values.tolist()


@pytest.mark.django_db
def test_run_cold_region(factory):
    factory.create(cold_world())
    run = hotspots.run_hotspots(permutations=9999, p_method="pseudo")

    labels = labels_by_cell(run)
    cold = {cell for cell, label in labels.items() if label in hotspots.COLD_LABELS}
    hot = {cell for cell, label in labels.items() if label in hotspots.HOT_LABELS}
    # Only CENTER and ring 1 have a neighbourhood of ones alone. Their level
    # (90% or 95%) depends on the seed, because these p-values sit near the
    # Benjamini-Hochberg threshold.
    assert cold == disk(1)
    assert {labels[cell] for cell in cold} <= {HotspotLabel.COLD_95, HotspotLabel.COLD_90}
    assert hot == set()
    assert run.cold_count == 7


@pytest.mark.django_db
def test_run_cold_region_adaptive(factory):
    factory.create(cold_world())
    run = hotspots.run_hotspots()

    labels = labels_by_cell(run)
    cold = {cell for cell, label in labels.items() if label in hotspots.COLD_LABELS}
    hot = {cell for cell, label in labels.items() if label in hotspots.HOT_LABELS}
    # BH puts CENTER and ring 1 at 95% for every seed from 0 to 29.
    assert cold == disk(1)
    assert {labels[cell] for cell in cold} == {HotspotLabel.COLD_95}
    assert hot == set()
    assert run.cold_count == 7


@pytest.mark.django_db
def test_run_cold_region_z_sim(factory):
    factory.create(cold_world())
    run = hotspots.run_hotspots(p_method="z_sim")

    labels = labels_by_cell(run)
    cold = {cell for cell, label in labels.items() if label in hotspots.COLD_LABELS}
    hot = {cell for cell, label in labels.items() if label in hotspots.HOT_LABELS}
    # z_sim of CENTER and ring 1 is about -3.6 and BH puts them at 95%
    # for every seed from 0 to 29, but 9,999 permutations reach 99% for some.
    assert cold == disk(1)
    assert {labels[cell] for cell in cold} <= {HotspotLabel.COLD_95, HotspotLabel.COLD_99}
    assert hot == set()
    assert run.cold_count == 7


@pytest.mark.django_db
def test_run_stores_cells_and_params(factory):
    factory.create(hot_world())
    run = hotspots.run_hotspots(category="fire_lane", received_from="2024-03-01", received_to="2024-03-31", seed=7)

    assert run.params == {
        "category": "fire_lane",
        "source": None,
        "received_from": "2024-03-01",
        "received_to": "2024-03-31",
        "resolution": 9,
        "permutations": 999,
        "seed": 7,
        "p_method": "adaptive",
        "refinement_permutations": [9999, 99999],
    }
    assert run.cells.count() == run.cell_count
    center = run.cells.get(h3_cell=CENTER)
    assert center.ticket_count == 10
    assert center.z_score > 3
    # Cells of the zero-count outer ring are in the study set.
    padding = next(iter(h3_int.grid_ring(CENTER, 7)))
    assert run.cells.get(h3_cell=padding).ticket_count == 0


@pytest.mark.django_db
def test_run_filter_excludes_other_category(factory):
    factory.create(hot_world(), category=Category.EBIKE_CHARGING)
    factory.create({CENTER: 3}, category=Category.FIRE_LANE)
    run = hotspots.run_hotspots(category="fire_lane")

    assert run.ticket_count == 3
    assert run.cell_count == 7
    assert run.hot_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize("p_method", gistar.P_METHODS)
def test_run_constant_counts_no_labels(factory, p_method):
    # Three tickets in each of 127 cells. The zero ring around them is the
    # only variation, so nothing may be flagged hot or cold.
    factory.create(dict.fromkeys(disk(6), 3))
    run = hotspots.run_hotspots(p_method=p_method)
    assert run.hot_count == 0
    assert run.cold_count == 0
    assert set(run.cells.values_list("label", flat=True)) == {HotspotLabel.NOT_SIGNIFICANT}


@pytest.mark.django_db
def test_run_empty_has_no_cells(factory):
    factory.create_without_cell(2)
    run = hotspots.run_hotspots()
    assert run.cell_count == 0
    assert run.ticket_count == 0
    assert run.cells.count() == 0
    assert run.tickets_without_cell == 2


@pytest.mark.django_db
@pytest.mark.parametrize("p_method", gistar.P_METHODS)
def test_run_single_cell_not_significant(factory, p_method):
    factory.create({CENTER: 5})
    run = hotspots.run_hotspots(p_method=p_method)
    assert run.cell_count == 7
    assert set(run.cells.values_list("label", flat=True)) == {HotspotLabel.NOT_SIGNIFICANT}
    assert HotspotCell.objects.filter(run=run, p_value__isnull=True).count() == 0


@pytest.mark.django_db
def test_run_same_seed_same_labels(factory):
    factory.create(hot_world())
    first = hotspots.run_hotspots(seed=99)
    second = hotspots.run_hotspots(seed=99)
    assert labels_by_cell(first) == labels_by_cell(second)
    assert list(first.cells.order_by("h3_cell").values_list("p_value", flat=True)) == list(
        second.cells.order_by("h3_cell").values_list("p_value", flat=True)
    )


@pytest.mark.django_db
def test_run_coarse_resolution(factory):
    factory.create(hot_world())
    run = hotspots.run_hotspots(resolution="coarse")
    assert run.params["resolution"] == 7
    cells = list(run.cells.values_list("h3_cell", flat=True))
    assert cells
    assert all(h3_int.get_resolution(cell) == 7 for cell in cells)
    assert run.ticket_count == sum(hot_world().values())


@pytest.mark.django_db
def test_recompute_reproduces_run(factory):
    factory.create(hot_world())
    original = hotspots.run_hotspots(resolution=8, seed=5)
    again = hotspots.recompute(original)
    assert again.pk != original.pk
    assert again.params == original.params
    assert labels_by_cell(again) == labels_by_cell(original)
    assert again.ticket_count == original.ticket_count


@pytest.mark.django_db
def test_run_stores_stages_only_for_adaptive(factory):
    factory.create(hot_world())
    pseudo = hotspots.run_hotspots(p_method="pseudo")
    adaptive = hotspots.run_hotspots(permutations=9999)
    custom = hotspots.run_hotspots(permutations=99, refinement_permutations=[999, 5000])

    assert "refinement_permutations" not in pseudo.params
    assert adaptive.params["refinement_permutations"] == [99999]
    assert custom.params["refinement_permutations"] == [999, 5000]
    again = hotspots.recompute(custom)
    assert again.params == custom.params
    assert labels_by_cell(again) == labels_by_cell(custom)


@pytest.mark.django_db
def test_recompute_old_run_uses_pseudo(factory):
    factory.create(hot_world())
    original = hotspots.run_hotspots(permutations=9999, seed=5, p_method="pseudo")
    # Runs stored before the p-value method was a parameter have no "p_method" key.
    del original.params["p_method"]
    original.save(update_fields=["params"])

    assert hotspots.get_p_method(original.params) == "pseudo"
    again = hotspots.recompute(original)
    assert again.params == {**original.params, "p_method": "pseudo"}
    assert labels_by_cell(again) == labels_by_cell(original)
    assert again.hot_count == 7


@pytest.mark.django_db
def test_run_logs_counts(factory, caplog):
    factory.create({CENTER: 2})
    with caplog.at_level(logging.INFO, logger="spatial.analysis.hotspots"):
        run = hotspots.run_hotspots()
    assert f"Hotspot run {run.pk}: 2 tickets (0 without a cell) in 7 cells" in caplog.text
    assert "0 hot, 0 cold with adaptive p-values" in caplog.text
    # No cell of seven comes near the p-value floor, so none is refined.
    assert f"Hotspot run {run.pk}: 0 cells reached the refinement stage of 9999 permutations" in caplog.text


@pytest.mark.django_db
def test_run_logs_capped_refinement(factory, caplog, monkeypatch):
    factory.create(hot_world())
    monkeypatch.setattr(gistar, "REFINEMENT_MIN_DRAWS", 0)
    monkeypatch.setattr(gistar, "REFINEMENT_DRAWS_RATIO", 0)
    with caplog.at_level(logging.INFO, logger="spatial.analysis.hotspots"):
        run = hotspots.run_hotspots()
    assert f"Hotspot run {run.pk}: 0 cells reached the refinement stage of 9999 permutations" in caplog.text
    assert "cells near the p-value floor were not refined because the refinement budget was used up" in caplog.text


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"category": "arson"}, "问题类型 “arson” 无效"),
        ({"source": "fax"}, "工单来源 “fax” 无效"),
        ({"received_from": "2024/03/01"}, "“2024/03/01” 无效"),
        ({"received_from": "2024-03-05", "received_to": "2024-03-01"}, "起始日期 2024-03-05 晚于截止日期 2024-03-01"),
        ({"resolution": 10}, "H3 分辨率 “10” 无效"),
        ({"resolution": "medium"}, "H3 分辨率 “medium” 无效"),
        ({"permutations": 0}, "置换次数 “0” 无效"),
        ({"seed": -1}, "随机种子 “-1” 无效"),
        ({"p_method": "exact"}, "p 值方法 “exact” 无效,可选 adaptive, pseudo, z_sim。"),
        ({"refinement_permutations": [500]}, "追加置换次数 “[500]” 无效"),
        ({"refinement_permutations": [99999, 9999]}, "第一级大于置换次数 999"),
        ({"refinement_permutations": "9999"}, "追加置换次数 “9999” 无效"),
        ({"p_method": "pseudo", "refinement_permutations": [9999]}, "追加置换次数仅适用于 p 值方法 adaptive,当前方法为 pseudo"),
    ],
)
def test_build_query_rejects(params, fragment):
    with pytest.raises(hotspots.HotspotParameterError) as error:
        hotspots.build_query(**params)
    assert fragment in str(error.value)


# --- the management command ----------------------------------------------------


@pytest.mark.django_db
def test_command_prints_summary(factory, capsys):
    factory.create(hot_world())
    factory.create_without_cell(1)
    call_command("compute_hotspots", "--permutations", "9999", "--seed", "12345", "--p-method", "pseudo")
    output = capsys.readouterr().out
    run = HotspotRun.objects.get()
    assert f"热点分析 #{run.pk} 已保存。" in output
    assert f"工单:{run.ticket_count} 条计入,1 条无 H3 单元未计入。" in output
    assert f"H3 单元:{len(disk(7))} 个(分辨率 9)。" in output
    assert "热点:7 个(99% 置信 0,95% 置信 7,90% 置信 0)。" in output
    assert "冷点:0 个" in output
    assert "p 值方法:伪 p 值(pseudo),置换 9999 次。" in output
    # 2 / 10000 * 169 / 0.10 = 0.34, so the floor does not limit this run.
    assert "提示" not in output


@pytest.mark.django_db
def test_command_default_adaptive_summary(factory, capsys):
    factory.create(hot_world())
    call_command("compute_hotspots")
    output = capsys.readouterr().out
    run = HotspotRun.objects.get()
    assert run.params["p_method"] == "adaptive"
    assert "热点:7 个(" in output
    assert "p 值方法:自适应伪 p 值(adaptive),置换 999 次,伪 p 值接近下限的单元追加 9999、99999 次。" in output
    assert "提示" not in output


@pytest.mark.django_db
def test_command_z_sim_summary(factory, capsys):
    factory.create(hot_world())
    call_command("compute_hotspots", "--p-method", "z_sim")
    output = capsys.readouterr().out
    run = HotspotRun.objects.get()
    assert run.params["p_method"] == "z_sim"
    assert "热点:13 个(99% 置信 13,95% 置信 0,90% 置信 0)。" in output
    assert "p 值方法:置换正态近似(z_sim),置换 999 次。" in output


@pytest.mark.django_db
def test_command_refinement_permutations(factory, capsys):
    factory.create(hot_world())
    call_command("compute_hotspots", "--permutations", "99", "--refinement-permutations", "999,5000")
    output = capsys.readouterr().out
    run = HotspotRun.objects.get()
    assert run.params["refinement_permutations"] == [999, 5000]
    assert "置换 99 次,伪 p 值接近下限的单元追加 999、5000 次。" in output


@pytest.mark.django_db
def test_command_warns_about_p_value_floor(factory, capsys):
    factory.create(hot_world())
    call_command("compute_hotspots", "--permutations", "99", "--p-method", "pseudo")
    output = capsys.readouterr().out
    # 2 / 100 * 169 / 0.10 = 33.8 cells.
    assert "提示:99 次置换的最小伪 p 值为 0.0200。FDR 校正下,至少 34 个单元" in output


@pytest.mark.django_db
@pytest.mark.parametrize("p_method", ["adaptive", "z_sim"])
def test_command_no_floor_warning_unless_pseudo(factory, capsys, p_method):
    factory.create(hot_world())
    call_command("compute_hotspots", "--permutations", "99", "--p-method", p_method)
    assert "提示" not in capsys.readouterr().out


@pytest.mark.django_db
def test_command_rerun_old_run_names_pseudo(factory, capsys):
    factory.create(hot_world())
    original = hotspots.run_hotspots(permutations=99, p_method="pseudo")
    del original.params["p_method"]
    original.save(update_fields=["params"])
    call_command("compute_hotspots", "--rerun", str(original.pk))
    output = capsys.readouterr().out
    assert "p 值方法:伪 p 值(pseudo),置换 99 次。" in output
    assert "提示:99 次置换的最小伪 p 值为 0.0200" in output


def test_command_help_renders():
    command = load_command_class("spatial", "compute_hotspots")
    # argparse wraps lines at spaces, so compare with single spaces.
    text = " ".join(command.create_parser("manage.py", "compute_hotspots").format_help().split())
    assert "Getis-Ord Gi* 热点" in text
    assert "最小伪 p 值为 2/(N+1)" in text
    assert "--p-method adaptive|pseudo|z_sim" in text
    assert "adaptive(默认)为自适应伪 p 值" in text
    assert "z_sim 为置换正态近似" in text
    assert "--refinement-permutations N1,N2" in text


@pytest.mark.django_db
def test_command_rerun(factory, capsys):
    factory.create(hot_world())
    original = hotspots.run_hotspots(seed=3)
    call_command("compute_hotspots", "--rerun", str(original.pk))
    again = HotspotRun.objects.exclude(pk=original.pk).get()
    assert again.params == original.params
    assert f"热点分析 #{again.pk} 已保存。" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--from", "2024-3-32"], "日期 “2024-3-32” 无效"),
        (["--to", "yesterday"], "日期 “yesterday” 无效"),
        (["--from", "2024-03-05", "--to", "2024-03-01"], "起始日期 2024-03-05 晚于截止日期 2024-03-01"),
        (["--resolution", "medium"], "--resolution “medium” 无效"),
        (["--resolution", "12"], "H3 分辨率 “12” 无效"),
        (["--category", "arson"], "问题类型 “arson” 无效"),
        (["--source", "fax"], "工单来源 “fax” 无效"),
        (["--permutations", "0"], "置换次数 “0” 无效"),
        (["--seed", "-5"], "随机种子 “-5” 无效"),
        (["--p-method", "normal"], "p 值方法 “normal” 无效,可选 adaptive, pseudo, z_sim。"),
        (["--refinement-permutations", "9999;99999"], "--refinement-permutations “9999;99999” 无效"),
        (["--refinement-permutations", "500"], "追加置换次数 “[500]” 无效"),
        (["--p-method", "z_sim", "--refinement-permutations", "9999"], "追加置换次数仅适用于 p 值方法 adaptive"),
        (["--rerun", "1", "--refinement-permutations", "9999"], "--rerun 不能与 --refinement-permutations 同时使用"),
        (["--rerun", "1", "--p-method", "pseudo"], "--rerun 不能与 --p-method 同时使用"),
        (["--rerun", "999999"], "热点分析 #999999 不存在"),
        (["--rerun", "1", "--seed", "2"], "--rerun 不能与 --seed 同时使用"),
    ],
)
def test_command_rejects_bad_options(arguments, fragment):
    with pytest.raises(CommandError) as error:
        call_command("compute_hotspots", *arguments)
    assert fragment in str(error.value)
