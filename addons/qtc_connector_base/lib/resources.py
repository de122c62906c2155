"""Resources a job writes: names, lock keys, and spreading a batch over workers.

A resource is a short text naming what a job writes: an Odoo record
(``sale.order:42``) or, when only the sender's ids are known at queue time, a
stable key derived from what the event names (``psa.project:3:PRJ-7``). The
queue never runs two jobs that share a resource at once: a running job holds
one PostgreSQL advisory lock per resource, keyed by :func:`lock_key`. A job's
resources are stored as one text, one name per line (:func:`encode`).

Declaring too much only makes jobs wait for each other; declaring too little
lets two of them meet on a row, which the runner then retries at once.
"""

import heapq
import zlib

SEPARATOR = "\n"
MAX_NAME_LENGTH = 200
# First key of every resource's advisory lock (jobs' own locks use others).
LOCK_NAMESPACE = 824203


def record_name(model_name, record_id):
    """The resource name of an Odoo record: ``sale.order:42``."""
    return f"{model_name}:{record_id}"


def normalize(names):
    """Clean, unique, sorted resource names (blank ones dropped).

    Line breaks would split a name in two when stored; they become spaces.
    Over-long names are cut (two names sharing the first
    ``MAX_NAME_LENGTH`` characters then serialise their jobs: safe).
    """
    cleaned = set()
    for name in names or ():
        text = " ".join(str(name).split())[:MAX_NAME_LENGTH]
        if text:
            cleaned.add(text)
    return tuple(sorted(cleaned))


def encode(names):
    """The stored form of a job's resources; ``None`` when there are none."""
    cleaned = normalize(names)
    return SEPARATOR.join(cleaned) if cleaned else None


def decode(text):
    """The names of a stored resources text (``None`` -> none)."""
    return tuple(name for name in (text or "").split(SEPARATOR) if name)


def lock_key(name):
    """A signed 32-bit key for ``name``, the second half of its advisory lock
    (the first is the queue's resource namespace). Stable across processes and
    versions; two names sharing a key only serialise their jobs."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def try_lock(cr, names):
    """Take the transaction-level advisory lock of every resource in ``names``
    on the database cursor ``cr``, all or none, without waiting.

    :param names: resource names, or their stored text
    :returns: True when all are now held (until ``cr``'s transaction ends)
    """
    if isinstance(names, str):
        names = decode(names)
    keys = [lock_key(name) for name in normalize(names)]
    if not keys:
        return True
    cr.execute("SAVEPOINT qtc_resource_locks")
    cr.execute(
        "SELECT bool_and(pg_try_advisory_xact_lock(%s, key)) "
        "FROM unnest(%s::int[]) AS key",
        (LOCK_NAMESPACE, keys),
    )
    taken = bool(cr.fetchone()[0])
    # Rolling back to the savepoint releases the locks taken meanwhile.
    cr.execute(
        "RELEASE SAVEPOINT qtc_resource_locks"
        if taken
        else "ROLLBACK TO SAVEPOINT qtc_resource_locks"
    )
    return taken


def assign_lanes(resource_sets, lanes):
    """Spread the items of a batch over at most ``lanes`` jobs so that jobs
    can run on several workers at once without sharing a resource.

    Items that share a resource, directly or through others, stay together;
    the groups go, largest first, to the lane with the fewest items (ties:
    by name, then the lowest lane), so the same mix of resources is split the
    same way in every batch.

    :param resource_sets: one iterable of resource names per item
    :param lanes: the number of jobs wanted at most (>= 1)
    :returns: the lane (0-based) of each item, in item order
    """
    sets = [normalize(names) for names in resource_sets]
    lanes = max(1, int(lanes))
    if lanes == 1 or len(sets) <= 1:
        return [0] * len(sets)
    parent = list(range(len(sets)))

    def root(index):
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_holder = {}
    for index, names in enumerate(sets):
        for name in names:
            holder = first_holder.setdefault(name, index)
            parent[root(index)] = root(holder)
    groups = {}
    for index in range(len(sets)):
        groups.setdefault(root(index), []).append(index)
    # Items with no resource each form a group of their own, named after
    # their position so the order stays deterministic.
    ordered = sorted(
        groups.values(),
        key=lambda members: (
            -len(members),
            min((name for i in members for name in sets[i]), default=""),
            members[0],
        ),
    )
    loads = [(0, lane) for lane in range(lanes)]
    assignment = [0] * len(sets)
    for members in ordered:
        load, lane = heapq.heappop(loads)
        for index in members:
            assignment[index] = lane
        heapq.heappush(loads, (load + len(members), lane))
    return assignment
