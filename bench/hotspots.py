"""Benchmark Gi* on about 50,000 contiguous H3 cells against esda.G_Local.

``python -m bench hotspots [--rings N] [--permutations N] [--seed N] [--no-esda-simulations]``

Cells are a resolution-9 disk around a point in Xiangzhou County, and
ticket counts are seeded Poisson draws whose rate rises near a few cluster
centers, so the data contain real hotspots. FireGrid runs once with each
p-value method ("adaptive", the default, "pseudo" and "z_sim"). The
baseline is
``esda.G_Local(star=True, transform="B", n_jobs=1, keep_simulations=True)``
with the same weights and number of permutations, run in the same process
without numba. It keeps its simulations because esda computes ``p_z_sim``
only then, which takes cells x permutations x 8 bytes (0.4 GB for 50,311
cells and 999 permutations). ``--no-esda-simulations`` runs it without.

A second run of each method shuffles the same counts over the cells, so
no cluster is left and every flagged cell is a false discovery. The 10 s
target applies to the default method on both the clustered and the
shuffled counts, neighbour table included.
"""
import argparse
import time
import warnings

import esda
import h3
import libpysal
import numpy as np
from h3.api import basic_int as h3_int

from spatial.analysis import gistar

TARGET_S = 10.0
CENTER_LAT, CENTER_LNG = 23.75, 109.23
METRES_PER_DEGREE_LAT = 111_320.0


def synthetic_counts(cells, rng, clusters=25, background_rate=0.3, peak_rate=6.0, cluster_radius_m=600.0):
    """Draw Poisson ticket counts per cell whose rate peaks at randomly placed cluster centers."""
    latlng = np.array([h3.cell_to_latlng(h3.int_to_str(cell)) for cell in cells.tolist()])
    north_m = (latlng[:, 0] - CENTER_LAT) * METRES_PER_DEGREE_LAT
    east_m = (latlng[:, 1] - CENTER_LNG) * METRES_PER_DEGREE_LAT * np.cos(np.radians(CENTER_LAT))

    rate = np.full(len(cells), background_rate)
    for cluster_center in rng.choice(len(cells), size=clusters, replace=False):
        distance_sq = (north_m - north_m[cluster_center]) ** 2 + (east_m - east_m[cluster_center]) ** 2
        rate += peak_rate * np.exp(-distance_sq / (2 * cluster_radius_m**2))
    return rng.poisson(rate).astype(np.float64)


def label_totals(direction, confidence):
    totals = {}
    for sign, name in ((1, "hot"), (-1, "cold")):
        for level in sorted(gistar.CONFIDENCE_ALPHAS, reverse=True):
            totals[f"{name}_{level}"] = int(((direction == sign) & (confidence == level)).sum())
    return totals


def label_summary(totals):
    return ", ".join(f"{key} {value}" for key, value in totals.items())


def time_gi_star(values, neighbours, permutations, seed, p_method):
    """Run Gi* and return the result, the wall-clock time and the CPU time of this process, in seconds.

    The statistic runs on one thread, so on a machine that other jobs
    share the CPU time is close to what the wall-clock time would be on
    an idle core.
    """
    started = time.perf_counter()
    started_cpu = time.process_time()
    result = gistar.gi_star(values, neighbours, permutations, seed, p_method=p_method)
    return result, time.perf_counter() - started, time.process_time() - started_cpu


def refinement_summary(result, permutations):
    """Describe how many cells reached each refinement stage of an adaptive run and what they drew."""
    stages = gistar.resolve_refinement_permutations(permutations)
    reached = []
    refinement_draws = 0
    for size in stages:
        cell_count = int((result.final_permutations >= size).sum())
        reached.append(f"{cell_count} cells at {size}")
        refinement_draws += cell_count * size
    first_stage_draws = len(result.final_permutations) * permutations
    reached.append(f"{result.refinement_capped} capped")
    reached.append(f"{refinement_draws / max(first_stage_draws, 1):.2f}x the first stage's draws")
    return ", ".join(reached)


def run_methods(values, neighbours, permutations, seed):
    """Run Gi* once per p-value method and return the results, wall-clock and CPU times by method."""
    results = {}
    statistic_s = {}
    statistic_cpu_s = {}
    for p_method in gistar.P_METHODS:
        results[p_method], statistic_s[p_method], statistic_cpu_s[p_method] = time_gi_star(
            values, neighbours, permutations, seed, p_method
        )
    return results, statistic_s, statistic_cpu_s


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench hotspots", description=__doc__.splitlines()[0])
    parser.add_argument("--rings", type=int, default=129, help="disk radius in H3 rings (129 gives 50,311 cells)")
    parser.add_argument("--permutations", type=int, default=999, help="conditional permutations per cell, the first stage for adaptive")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the counts and of every permutation run (the shuffle uses seed + 1)")
    parser.add_argument(
        "--no-esda-simulations", dest="esda_simulations", action="store_false",
        help="run esda with keep_simulations=False, which saves cells x permutations x 8 bytes but gives no p_z_sim",
    )
    args = parser.parse_args(argv)

    center = h3.str_to_int(h3.latlng_to_cell(CENTER_LAT, CENTER_LNG, 9))
    cells = np.array(sorted(h3_int.grid_disk(center, args.rings)), dtype=np.uint64)
    values = synthetic_counts(cells, np.random.default_rng(args.seed))
    print(f"cells: {len(cells)} (resolution 9, disk of {args.rings} rings), tickets: {int(values.sum())}, "
          f"permutations: {args.permutations}")

    started = time.perf_counter()
    started_cpu = time.process_time()
    neighbours = gistar.neighbour_index(cells)
    weights_s = time.perf_counter() - started
    weights_cpu_s = time.process_time() - started_cpu

    results, statistic_s, statistic_cpu_s = run_methods(values, neighbours, args.permutations, args.seed)
    shuffled = np.random.default_rng(args.seed + 1).permutation(values)
    null_results, null_statistic_s, null_statistic_cpu_s = run_methods(
        shuffled, neighbours, args.permutations, args.seed
    )
    default_s = statistic_s[gistar.DEFAULT_P_METHOD]
    firegrid_s = weights_s + default_s
    null_firegrid_s = weights_s + null_statistic_s[gistar.DEFAULT_P_METHOD]
    firegrid_cpu_s = weights_cpu_s + statistic_cpu_s[gistar.DEFAULT_P_METHOD]
    null_firegrid_cpu_s = weights_cpu_s + null_statistic_cpu_s[gistar.DEFAULT_P_METHOD]

    table = {i: [int(j) for j in row if j >= 0] for i, row in enumerate(neighbours)}
    started = time.perf_counter()
    weights = libpysal.weights.W(table, silence_warnings=True)
    esda_weights_s = time.perf_counter() - started
    started = time.perf_counter()
    started_cpu = time.process_time()
    with warnings.catch_warnings():
        # esda 2.9 warns that its default "directed" alternative will change.
        warnings.simplefilter("ignore", DeprecationWarning)
        baseline = esda.G_Local(
            values, weights, transform="B", star=True, permutations=args.permutations,
            n_jobs=1, seed=args.seed, keep_simulations=args.esda_simulations,
        )
    esda_s = time.perf_counter() - started
    esda_cpu_s = time.process_time() - started_cpu

    # esda's directed p-value doubled, with the same FDR step and the
    # z-score sign alone, shows what counting ties as less extreme does.
    esda_p = np.minimum(1.0, 2.0 * baseline.p_sim)
    esda_confidence = gistar.fdr_confidence(esda_p)
    esda_direction = np.where(esda_confidence > 0, np.sign(np.nan_to_num(baseline.Zs)), 0).astype(int)
    z_difference = np.nanmax(np.abs(baseline.Zs - results[gistar.DEFAULT_P_METHOD].z_scores))

    pseudo = results[gistar.P_METHOD_PSEUDO]
    floor = 2.0 / (args.permutations + 1)
    at_floor = int((pseudo.p_values <= floor).sum())
    needed = gistar.fdr_min_rejections(len(cells), args.permutations, gistar.CONFIDENCE_ALPHAS[90])

    print(f"FireGrid weights: {weights_s:.2f} s ({weights_cpu_s:.2f} s CPU)")
    for p_method in gistar.P_METHODS:
        marker = " (default)" if p_method == gistar.DEFAULT_P_METHOD else ""
        print(f"FireGrid Gi* {p_method}{marker}: statistic {statistic_s[p_method]:.2f} s "
              f"({statistic_cpu_s[p_method]:.2f} s CPU), total {weights_s + statistic_s[p_method]:.2f} s; "
              f"shuffled counts: statistic {null_statistic_s[p_method]:.2f} s "
              f"({null_statistic_cpu_s[p_method]:.2f} s CPU), total {weights_s + null_statistic_s[p_method]:.2f} s")
    adaptive = gistar.P_METHOD_ADAPTIVE
    print(f"adaptive refinement: {refinement_summary(results[adaptive], args.permutations)}; "
          f"shuffled counts: {refinement_summary(null_results[adaptive], args.permutations)}")
    print(f"esda.G_Local: weights {esda_weights_s:.2f} s + statistic {esda_s:.2f} s ({esda_cpu_s:.2f} s CPU) "
          f"(n_jobs=1, keep_simulations={args.esda_simulations}, no numba)")
    print(f"statistic ratio esda / FireGrid {gistar.DEFAULT_P_METHOD}: {esda_s / default_s:.1f}x wall-clock, "
          f"{esda_cpu_s / statistic_cpu_s[gistar.DEFAULT_P_METHOD]:.1f}x CPU")
    print(f"largest z-score difference from esda: {z_difference:.1e}")
    for p_method in gistar.P_METHODS:
        result = results[p_method]
        print(f"FireGrid labels, {p_method}: " + label_summary(label_totals(result.direction, result.confidence)))
    print(f"cells at the smallest pseudo p-value {floor:.4f}: {at_floor}; FDR at 0.10 needs at least {needed}")
    print("esda p_sim doubled, same FDR: " + label_summary(label_totals(esda_direction, esda_confidence)))
    if args.esda_simulations:
        # esda's one-sided p_z_sim doubled, with the same FDR step and sign rule as FireGrid's z_sim.
        esda_z_sim_p = np.minimum(1.0, 2.0 * baseline.p_z_sim)
        esda_z_sim_confidence = gistar.fdr_confidence(esda_z_sim_p)
        esda_z_sim_direction = gistar.assign_direction_z_sim(baseline.Zs, baseline.z_sim, esda_z_sim_confidence)
        print("esda p_z_sim doubled, same FDR: "
              + label_summary(label_totals(esda_z_sim_direction, esda_z_sim_confidence)))
    for p_method in gistar.P_METHODS:
        result = null_results[p_method]
        print(f"shuffled counts (no clusters), {p_method}: "
              + label_summary(label_totals(result.direction, result.confidence)))

    met = "met" if max(firegrid_s, null_firegrid_s) < TARGET_S else "NOT met"
    print(f"target: {len(cells)} cells with {args.permutations} permutations under {TARGET_S:.0f} s "
          f"({gistar.DEFAULT_P_METHOD}, clustered {firegrid_s:.2f} s, shuffled {null_firegrid_s:.2f} s): {met}; "
          f"CPU time clustered {firegrid_cpu_s:.2f} s, shuffled {null_firegrid_cpu_s:.2f} s")
    flagged = []
    for p_method in gistar.P_METHODS:
        hot = int((results[p_method].direction == 1).sum())
        null_flagged = int((null_results[p_method].direction != 0).sum())
        flagged.append(f"{p_method} {hot} hot / {null_flagged} flagged on shuffled")
    print(
        f"hotspots: Gi* on {len(cells)} cells x {args.permutations} permutations {firegrid_s:.2f} s clustered, "
        f"{null_firegrid_s:.2f} s shuffled ({gistar.DEFAULT_P_METHOD}, {firegrid_cpu_s:.2f} s and "
        f"{null_firegrid_cpu_s:.2f} s CPU); " + ", ".join(flagged)
        + f"; esda.G_Local {esda_s:.2f} s; 10 s target {met}"
    )
    return 0
