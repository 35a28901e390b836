"""Orienteering tours: pick and order stops to maximise value within a time budget.

Node 0 is the start; nodes 1..n are stops. ``time_s`` is the travel time
matrix (s, asymmetric because of one-way streets) and ``cost`` the matrix
the tour minimises among tours of equal value (travel time for patrols,
length in metres for the quality benchmark). Each stop has a value and a
service time; the tour's travel plus service time must fit the budget.

solve_orienteering() uses OR-Tools' routing solver, with each stop in a
disjunction whose penalty is its value. The penalty per value unit exceeds
any possible tour cost, so the solver never trades value for a shorter
tour. heuristic_orienteering() is the fallback when OR-Tools finds nothing:
greedy insertion by value per added second, then or-opt and 2-opt moves.
"""
import logging
import time
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Value is rounded to this many units per 1.0 before it becomes an integer penalty.
VALUE_SCALE = 100
# Costs are rounded to 1/COST_SCALE units (0.1 s or 0.1 m) for OR-Tools' integer arcs.
COST_SCALE = 10


@dataclass
class Tour:
    """Stops visited in order (indices 1..n into the matrices) and how the tour was found."""

    order: list
    solver: str
    solve_s: float
    cost: float
    time_s: float
    value: float


def tour_time(order, time_s, service_s, return_to_start=True):
    """Return travel plus service time (s) of visiting ``order`` from node 0."""
    path = [0, *order, 0] if return_to_start else [0, *order]
    travel = sum(time_s[a][b] for a, b in zip(path[:-1], path[1:]))
    return float(travel + sum(service_s[i] for i in order))


def tour_cost(order, cost, return_to_start=True):
    """Return the summed ``cost`` of the arcs of ``order`` from node 0."""
    path = [0, *order, 0] if return_to_start else [0, *order]
    return float(sum(cost[a][b] for a, b in zip(path[:-1], path[1:])))


def _finish(order, solver, started, cost, time_s, service_s, values, return_to_start):
    return Tour(order=list(order), solver=solver, solve_s=time.perf_counter() - started,
                cost=tour_cost(order, cost, return_to_start), time_s=tour_time(order, time_s, service_s, return_to_start),
                value=float(sum(values[i] for i in order)))


def solve_orienteering(time_s, service_s, values, budget_s, cost=None, time_limit_s=1.2, return_to_start=True):
    """Choose and order stops with OR-Tools, falling back to the heuristic when it finds no solution.

    Parameters
    ----------
    time_s : (n+1, n+1) array
        Travel time in seconds; row and column 0 are the start.
    service_s : sequence of n+1 floats
        Time spent at each node in seconds; ``service_s[0]`` is ignored.
    values : sequence of n+1 floats
        Value of visiting each stop; ``values[0]`` is ignored. Stops with
        value 0 are visited only when free.
    budget_s : float
        Limit on travel plus service time in seconds (``np.inf`` for none,
        which makes the problem a travelling-salesman tour of every stop).
    cost : (n+1, n+1) array, optional
        Matrix minimised among tours of equal value; ``time_s`` by default.
    time_limit_s : float
        OR-Tools search time limit in seconds. Guided local search uses all of it.
    return_to_start : bool
        Close the tour at the start; otherwise it ends at the last stop.

    Returns
    -------
    Tour
        Stops must have finite times to and from the start to be chosen.
    """
    started = time.perf_counter()
    time_s = np.asarray(time_s, dtype=float)
    cost = time_s if cost is None else np.asarray(cost, dtype=float)
    service_s = np.asarray(service_s, dtype=float).copy()
    service_s[0] = 0.0
    values = np.asarray(values, dtype=float)
    size = len(time_s)
    if size <= 1:
        return _finish([], "none", started, cost, time_s, service_s, values, return_to_start)

    # The heuristic takes milliseconds. Its tour seeds the OR-Tools search,
    # and keeping the better of the two guards against a search stopped
    # early by its time limit.
    fallback = heuristic_order(time_s, service_s, values, budget_s, cost, return_to_start)
    try:
        order = _ortools_order(time_s, service_s, values, budget_s, cost, time_limit_s, return_to_start, fallback)
    except ImportError:
        logger.warning("OR-Tools is not importable; using the insertion heuristic")
        order = None
    if order is None:
        logger.warning("OR-Tools found no tour for %d stops in %.1f s; using the insertion heuristic",
                       size - 1, time_limit_s)
        return _finish(fallback, "heuristic", started, cost, time_s, service_s, values, return_to_start)
    if _better(fallback, order, values, cost, return_to_start):
        return _finish(fallback, "heuristic", started, cost, time_s, service_s, values, return_to_start)
    return _finish(order, "ortools", started, cost, time_s, service_s, values, return_to_start)


def _better(first, second, values, cost, return_to_start):
    """Return True when tour ``first`` has more value, or equal value at a lower cost, than ``second``."""
    first_value = round(float(sum(values[i] for i in first)) * VALUE_SCALE)
    second_value = round(float(sum(values[i] for i in second)) * VALUE_SCALE)
    if first_value != second_value:
        return first_value > second_value
    return tour_cost(first, cost, return_to_start) < tour_cost(second, cost, return_to_start) - 1e-6


def _ortools_order(time_s, service_s, values, budget_s, cost, time_limit_s, return_to_start, initial_order=()):
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    size = len(time_s)
    # An open tour ends at a dummy node reached from every stop at no cost.
    end = size if not return_to_start else 0
    node_count = size + (0 if return_to_start else 1)
    finite_cost = np.where(np.isfinite(cost), cost, 0)
    unreachable_arc = int(finite_cost.max() * COST_SCALE * node_count) + 1
    horizon = int(min(budget_s, 10 ** 12)) if np.isfinite(budget_s) else 10 ** 12

    # Integer matrices registered with OR-Tools are evaluated in C++, which
    # is several times faster than Python callbacks during the search.
    cost_matrix = np.zeros((node_count, node_count), dtype=np.int64)
    cost_matrix[:size, :size] = np.where(np.isfinite(cost), np.round(finite_cost * COST_SCALE), unreachable_arc)
    finite_time = np.where(np.isfinite(time_s), time_s, 0)
    time_matrix = np.zeros((node_count, node_count), dtype=np.int64)
    time_matrix[:size, :size] = np.where(np.isfinite(time_s), np.round(finite_time + service_s[:, None]), horizon + 1)
    if not return_to_start:
        time_matrix[:size, end] = np.round(service_s)
    np.fill_diagonal(cost_matrix, 0)
    np.fill_diagonal(time_matrix, 0)

    manager = pywrapcp.RoutingIndexManager(node_count, 1, [0], [end])
    routing = pywrapcp.RoutingModel(manager)
    cost_callback = routing.RegisterTransitMatrix(cost_matrix.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_callback)
    time_callback = routing.RegisterTransitMatrix(time_matrix.tolist())
    routing.AddDimension(time_callback, 0, horizon, True, "time")

    # One value unit outweighs the costliest possible tour.
    penalty_unit = unreachable_arc * node_count + 1
    for stop in range(1, size):
        penalty = max(int(round(values[stop] * VALUE_SCALE)), 0) * penalty_unit
        routing.AddDisjunction([manager.NodeToIndex(stop)], penalty)

    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(max(int(time_limit_s * 1000), 1))
    routing.CloseModelWithParameters(parameters)
    initial = routing.ReadAssignmentFromRoutes([list(initial_order)], True) if len(initial_order) else None
    if initial is not None:
        solution = routing.SolveFromAssignmentWithParameters(initial, parameters)
    else:
        # No seed, or a seed infeasible after rounding arc times to whole seconds.
        solution = routing.SolveWithParameters(parameters)
    if solution is None:
        return None

    order = []
    index = routing.Start(0)
    while not routing.IsEnd(index):
        node = manager.IndexToNode(index)
        if node != 0:
            order.append(node)
        index = solution.Value(routing.NextVar(index))
    if tour_time(order, time_s, service_s, return_to_start) > budget_s + len(order) + 1:
        # Integer rounding can push a tour over the budget by up to a second per arc.
        return None
    return order


def heuristic_order(time_s, service_s, values, budget_s, cost=None, return_to_start=True, improve_limit_s=0.3):
    """Build a tour by greedy insertion, then shorten it with or-opt and 2-opt and insert again.

    Each step inserts the stop with the highest value per added second
    (ties: lower added cost) at its cheapest feasible position. The
    improvement moves stop after ``improve_limit_s`` seconds in all.
    """
    deadline = time.perf_counter() + improve_limit_s
    time_s = np.asarray(time_s, dtype=float)
    cost = time_s if cost is None else np.asarray(cost, dtype=float)
    size = len(time_s)
    order = []
    remaining = {stop for stop in range(1, size)
                 if np.isfinite(time_s[0][stop]) and np.isfinite(time_s[stop][0])}
    while True:
        inserted = _insert_best(order, remaining, time_s, cost, service_s, values, budget_s, return_to_start)
        if not inserted:
            order = _improve(order, cost, time_s, service_s, budget_s, return_to_start, deadline)
            if not _insert_best(order, remaining, time_s, cost, service_s, values, budget_s, return_to_start):
                return order


def _insert_best(order, remaining, time_s, cost, service_s, values, budget_s, return_to_start):
    current_time = tour_time(order, time_s, service_s, return_to_start)
    best = None
    path = [0, *order, 0] if return_to_start else [0, *order, None]
    for stop in remaining:
        for position in range(len(path) - 1):
            a, b = path[position], path[position + 1]
            if b is None:
                added_time = time_s[a][stop] + service_s[stop]
                added_cost = cost[a][stop]
            else:
                added_time = time_s[a][stop] + service_s[stop] + time_s[stop][b] - time_s[a][b]
                added_cost = cost[a][stop] + cost[stop][b] - cost[a][b]
            if not np.isfinite(added_time) or current_time + added_time > budget_s:
                continue
            key = (values[stop] / max(added_time, 1.0), -added_cost)
            if best is None or key > best[0]:
                best = (key, stop, position)
    if best is None:
        return False
    _key, stop, position = best
    order.insert(position, stop)
    remaining.discard(stop)
    return True


def _improve(order, cost, time_s, service_s, budget_s, return_to_start, deadline):
    """Apply improving or-opt (move one stop) and 2-opt (reverse a segment) moves until none is left."""
    best_cost = tour_cost(order, cost, return_to_start)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        candidates = []
        for i in range(len(order)):
            for j in range(len(order)):
                if i != j:
                    moved = order[:i] + order[i + 1:]
                    moved.insert(j, order[i])
                    candidates.append(moved)
        for i in range(len(order) - 1):
            for j in range(i + 2, len(order) + 1):
                candidates.append(order[:i] + order[i:j][::-1] + order[j:])
        for candidate in candidates:
            candidate_cost = tour_cost(candidate, cost, return_to_start)
            if candidate_cost < best_cost - 1e-9 and \
                    tour_time(candidate, time_s, service_s, return_to_start) <= budget_s:
                order, best_cost, improved = candidate, candidate_cost, True
                break
    return order


def nearest_neighbour_order(cost):
    """Return the tour that always goes to the nearest unvisited stop by ``cost`` (the baseline)."""
    cost = np.asarray(cost, dtype=float)
    remaining = set(range(1, len(cost)))
    order = []
    current = 0
    while remaining:
        current = min(remaining, key=lambda stop: (cost[current][stop], stop))
        order.append(current)
        remaining.discard(current)
    return order
