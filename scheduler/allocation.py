"""The pure scheduling planner.

No ORM and no Django here: a ``ClusterSnapshot`` (capacity, running and waiting
deployments) goes in, a ``Plan`` (starts, preemptions, and the remaining queue with
a reason for each entry) comes out. ``scheduler.services`` builds the snapshot from
locked rows and applies the plan; the property tests, the benchmarks and the queue
endpoint call ``plan`` directly.

Units are exact integers: CPU in millicores, RAM in MiB, GPUs as whole devices.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hypervisor.resources import Resources
from scheduler import packing, reasons


class Policy(StrEnum):
    FIFO = "fifo"
    PACK = "pack"


ZERO = Resources()


@dataclass(frozen=True, slots=True)
class RunningDeployment:
    id: int
    resources: Resources
    priority: int
    preemptible: bool
    started_at: datetime
    # When it entered the queue. A preempted deployment goes back to the queue at its
    # original place, so the planner needs this to order victims among the waiting ones.
    # Optional for compatibility: when missing, ``started_at`` stands in for it (a
    # deployment is queued before it starts, so that is an upper bound).
    queued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WaitingDeployment:
    """A deployment in status ``queued`` (its dependencies are met)."""

    id: int
    resources: Resources
    priority: int
    preemptible: bool
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    capacity: Resources
    running: tuple[RunningDeployment, ...]
    waiting: tuple[WaitingDeployment, ...]
    now: datetime
    policy: Policy = Policy.FIFO
    starvation_after_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start ``deployment_id``; ``preempted`` lists the victims stopped to make room for it
    (empty when it fitted in free room)."""

    deployment_id: int
    preempted: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Preemption:
    victim_id: int
    preemptor_id: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A deployment still waiting after the plan, in the order the scheduler considers them."""

    deployment_id: int
    position: int  # 1-based
    reason: str
    reserved: bool = False  # holds a starvation reservation


@dataclass(frozen=True, slots=True)
class Plan:
    starts: tuple[Start, ...]
    preemptions: tuple[Preemption, ...]
    queue: tuple[QueueEntry, ...]

    @property
    def changed(self) -> bool:
        return bool(self.starts or self.preemptions)


# --------------------------------------------------------------------------------------
# The planner. Internally a deployment is a mutable ``_Job`` with its vector unpacked into
# three ints: the walk below runs once per waiting deployment per pass, and attribute
# access on plain ints is several times cheaper than building ``Resources`` objects.

Vec = tuple[int, int, int]


def plan(snapshot: ClusterSnapshot) -> Plan:
    """Decide what starts and what is preempted on one cluster, and explain the queue.

    Pure and deterministic: the same snapshot, with its tuples in any order, gives the
    same plan. The plan is net: no deployment is both preempted and started.

    ``fifo`` walks the queue to a fixpoint. ``pack`` lets ``scheduler.packing`` choose what
    should run, realizes that choice with the same walk (victims in guarantee 5's order,
    among those the search chose), then runs the fifo fixpoint as a repair step, so that
    guarantees 3 and 4 hold whatever the search did. Should the fifo plan run more at
    some priority (from the top) while stopping only what pack's rule allows, it is used
    instead: that happens only when the search is not exact (a long queue, or its node
    budget spent). Fifo may also run more by breaking pack's rule: preempting for one
    start at a time, it can stop two deployments where, jointly, the higher-priority work
    needs one, and start work of their own priority in the room left; pack does not.
    """
    fifo = _Engine(snapshot)
    fifo.settle()
    if snapshot.policy is not Policy.PACK or not fifo.has_choices():
        return fifo.result()
    packed = _Engine(snapshot, like=fifo)
    solution = packing.solve(packed.problem())
    packed.settle(packed.target(solution.chosen))
    if _compare_counts(packed.counts(), fifo.counts()) >= 0 or not fifo.stops_as_pack_would():
        return packed.result()
    return fifo.result()


def is_starving(queued_at: datetime, snapshot: ClusterSnapshot) -> bool:
    """Whether a deployment queued at ``queued_at`` holds a starvation reservation."""
    limit = snapshot.starvation_after_seconds
    return limit is not None and snapshot.now - queued_at > timedelta(seconds=limit)


class _Job:
    """One deployment as the planner moves it between running and waiting."""

    __slots__ = (
        "cpu",
        "gpu",
        "id",
        "key",
        "possible",
        "preemptible",
        "priority",
        "ram",
        "started_at",
        "starving",
        "was_running",
    )

    def __init__(
        self,
        *,
        id: int,
        resources: Resources,
        priority: int,
        preemptible: bool,
        started_at: datetime,
        queued_at: datetime,
        was_running: bool,
        starving: bool,
    ) -> None:
        self.id = id
        self.cpu, self.ram, self.gpu = resources.cpu, resources.ram_mb, resources.gpu
        self.priority = priority
        self.preemptible = preemptible
        # For a deployment that starts in this plan, the plan's ``now``: the service
        # stamps it so, and it makes the newest work the first victim (guarantee 5).
        self.started_at = started_at
        self.was_running = was_running  # running before the plan (else: waiting)
        self.starving = starving
        # Order of consideration: priority descending, starving first within a priority,
        # then queue order (queued_at, id). Victims keep their original queued_at, hence
        # their place.
        self.key = (-priority, 0 if starving else 1, queued_at, id)
        # Whether it fits the cluster at all; a request beyond the capacity can never
        # start, so it holds no reservation (that would idle the cluster for ever).
        self.possible = True

    @property
    def request(self) -> Vec:
        return (self.cpu, self.ram, self.gpu)


def _victim_order(jobs: list[_Job]) -> list[_Job]:
    """Guarantee 5's preference: lowest priority first, then the most recently started,
    then the highest id (two stable sorts: datetimes cannot be negated)."""
    jobs = sorted(jobs, key=lambda j: (j.started_at, j.id), reverse=True)
    jobs.sort(key=lambda j: j.priority)
    return jobs


def _fits(request: Vec, room: Vec) -> bool:
    return request[0] <= room[0] and request[1] <= room[1] and request[2] <= room[2]


def _plus(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _minus(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _reserve(job: _Job, free: list[int], held: list[int]) -> None:
    """Hold for a starving ``job`` the part of its request that is free right now.

    Clamped to the free room not already held, so that reservations stack without ever
    holding more than is free: a reservation never forces work off the cluster, it only
    keeps equal- and lower-priority deployments out of the room it covers.
    """
    if free[0] <= held[0] and free[1] <= held[1] and free[2] <= held[2]:
        return  # all the free room is held already (common in a long starving queue)
    for d, need in enumerate(job.request):
        held[d] += min(need, max(0, free[d] - held[d]))


class _LowerRoom:
    """The room held by preemptible running deployments of priority strictly below the
    level being walked: what a deployment of that level could free by preemption.

    The walk goes down the priorities, so the sum only loses terms: crossing a level
    drops the deployments at or above it (a pointer over a list sorted by priority), and
    a victim leaves it when preempted. Deployments started during the walk are at or
    above the current level and never enter it. This makes the "could it start even by
    preempting everything it may?" test O(1) per waiting deployment.
    """

    __slots__ = ("_jobs", "_next", "_running", "cpu", "gpu", "ram")

    def __init__(self, running: dict[int, _Job]) -> None:
        self._jobs = sorted(
            (j for j in running.values() if j.preemptible), key=lambda j: j.priority, reverse=True
        )
        self._running = running  # live: victims leave it during the walk
        self._next = 0
        self.cpu = sum(j.cpu for j in self._jobs)
        self.ram = sum(j.ram for j in self._jobs)
        self.gpu = sum(j.gpu for j in self._jobs)

    @property
    def room(self) -> Vec:
        return (self.cpu, self.ram, self.gpu)

    def descend_to(self, level: int) -> None:
        jobs = self._jobs
        while self._next < len(jobs) and jobs[self._next].priority >= level:
            job = jobs[self._next]
            self._next += 1
            if self._running.get(job.id) is job:  # a victim was already taken out
                self.remove(job)

    def remove(self, job: _Job) -> None:
        self.cpu -= job.cpu
        self.ram -= job.ram
        self.gpu -= job.gpu


def _in_order(
    queue: list[_Job], returned: list[tuple[tuple, _Job]], order: Callable[[_Job], tuple]
) -> Iterator[_Job]:
    """Merge the queue, sorted by ``order``, with the victims sent back to it during the
    walk (a heap keyed by ``order``).

    Victims always have a lower priority than the deployment that preempted them, and
    every order starts with the priority, so they sort after the current position and
    the merged walk stays in order.
    """
    i = 0
    while True:
        if returned and (i >= len(queue) or returned[0][0] < order(queue[i])):
            yield heapq.heappop(returned)[1]
        elif i < len(queue):
            yield queue[i]
            i += 1
        else:
            return


@dataclass(frozen=True, slots=True)
class _Target:
    """A state chosen by the ``pack`` search, and the order that realizes it.

    The walk settles each priority completely before the next one down takes any room:
    within a priority, first the victims of this plan coming back (net, they never
    stopped: they keep their place ahead of work of their own priority), then the
    starving deployments (they start or hold their reservation, as in the search), then
    the starts the search chose (preempting among the victims it chose, or else under the
    fifo rule), then everything else of that priority under the fifo rules, so that
    guarantees 3 and 4 hold at each priority before lower ones are placed.
    """

    starts: frozenset[int]
    victims: frozenset[int]

    def order(self, job: _Job) -> tuple:
        if job.was_running:
            group = 0
        elif job.starving:
            group = 1
        else:
            group = 2 if job.id in self.starts else 3
        return (-job.priority, group, job.key)


class _Engine:
    """The mutable state of one plan: what runs, what waits, who preempted whom."""

    def __init__(self, snapshot: ClusterSnapshot, like: _Engine | None = None) -> None:
        self.snapshot = snapshot
        capacity = snapshot.capacity
        self.cap: Vec = (capacity.cpu, capacity.ram_mb, capacity.gpu)
        if like is not None:  # jobs never change once built: share the other plan's
            self.running = dict(like.initial_running)
            self.waiting = list(like.initial_waiting)
        else:
            self.running = {r.id: self._running_job(r) for r in snapshot.running}
            self.waiting = sorted((self._waiting_job(w) for w in snapshot.waiting), key=_key)
            for job in (*self.waiting, *self.running.values()):
                job.possible = _fits(job.request, self.cap)
        self.initial_running: dict[int, _Job] = dict(self.running)
        self.initial_waiting: list[_Job] = list(self.waiting)
        self.free = [
            self.cap[0] - sum(j.cpu for j in self.running.values()),
            self.cap[1] - sum(j.ram for j in self.running.values()),
            self.cap[2] - sum(j.gpu for j in self.running.values()),
        ]
        # Net bookkeeping. A victim is credited to a deployment that starts in this plan:
        # the one that preempted it, or, when that one is itself stopped again or the
        # victim's room passes through a restarted victim, whoever took the room last.
        self.preemptor_of: dict[int, int] = {}
        self.victims_of: dict[int, list[int]] = {}
        self.start_seq: dict[int, int] = {}  # id -> when it (last) started: the plan's order
        self._in_play: frozenset[int] = frozenset()  # running work the pack search may stop
        self._events = 0

    def _running_job(self, r: RunningDeployment) -> _Job:
        queued_at = r.queued_at if r.queued_at is not None else r.started_at
        starving = is_starving(queued_at, self.snapshot)
        return _Job(
            id=r.id,
            resources=r.resources,
            priority=r.priority,
            preemptible=r.preemptible,
            started_at=r.started_at,
            queued_at=queued_at,
            was_running=True,
            starving=starving,
        )

    def _waiting_job(self, w: WaitingDeployment) -> _Job:
        return _Job(
            id=w.id,
            resources=w.resources,
            priority=w.priority,
            preemptible=w.preemptible,
            started_at=self.snapshot.now,
            queued_at=w.queued_at,
            was_running=False,
            starving=is_starving(w.queued_at, self.snapshot),
        )

    # -- the fixpoint ----------------------------------------------------------------

    def settle(self, target: _Target | None = None) -> None:
        """Walk the queue until a full pass changes nothing.

        Termination: look at the vector (number running at each priority, highest
        first). A start that fits adds one at its priority; a start with preemption adds
        one at its priority and removes only at strictly lower ones. Either way the vector
        grows lexicographically, and it can take finitely many values, so there are
        finitely many starts; a pass without a start ends the loop. In practice the
        second pass only confirms the first: a deployment that could not start cannot
        start later in the same pass (what follows it only fills or trades room below its
        priority), the extra pass is there because reservations are recomputed from the
        room free at the time.
        """
        if target is not None:
            self._pass(target)
        while self._pass(None):
            pass

    def _pass(self, target: _Target | None) -> bool:
        order = _key if target is None else target.order
        queue = self.waiting if target is None else sorted(self.waiting, key=order)
        held = [0, 0, 0]  # reservations of the starving deployments met so far
        lower = _LowerRoom(self.running)
        returned: list[tuple[tuple, _Job]] = []
        still: list[_Job] = []
        changed = False
        for job in _in_order(queue, returned, order):
            lower.descend_to(job.priority)
            if self._try_start(job, held, lower, returned, target, order):
                changed = True
                continue
            still.append(job)
            if job.starving and job.possible:
                # Nothing after it in this walk has a higher priority, so the room held
                # here is closed to exactly the equal- and lower-priority ones.
                _reserve(job, self.free, held)
        self.waiting = still if target is None else sorted(still, key=_key)
        return changed

    def _try_start(
        self,
        job: _Job,
        held: list[int],
        lower: _LowerRoom,
        returned: list[tuple[tuple, _Job]],
        target: _Target | None,
        order: Callable[[_Job], tuple],
    ) -> bool:
        chosen = target is not None and job.id in target.starts
        free = self.free
        usable = (free[0] - held[0], free[1] - held[1], free[2] - held[2])
        if job.cpu <= usable[0] and job.ram <= usable[1] and job.gpu <= usable[2]:
            self._start(job, [])
            return True
        # A start the search chose preempts among the victims it chose; failing that (or
        # for any other deployment), the fifo rule applies, with an exact quick refusal:
        # if even every lower-priority preemptible deployment would not make room, no
        # subset will. Most of a long queue ends here in O(1).
        victims = self._choose_victims(job, usable, target) if chosen else None
        if victims is None:
            if not _fits(job.request, _plus(usable, lower.room)):
                return False
            victims = self._choose_victims(job, usable, None)
        if victims is None:
            return False
        for victim in victims:
            lower.remove(victim)
            heapq.heappush(returned, (order(victim), victim))
        self._start(job, victims)
        return True

    def _choose_victims(self, job: _Job, usable: Vec, target: _Target | None) -> list[_Job] | None:
        """Guarantee 5: the shortest prefix, in preference order, of the preemptible
        lower-priority deployments after which ``job`` fits, then pruned last-taken first
        of every victim the others make unnecessary. None when even all would not do."""
        candidates = [
            r
            for r in self.running.values()
            if r.preemptible
            and r.priority < job.priority
            and (target is None or r.id in target.victims)
        ]
        need = _minus(job.request, usable)
        got = (0, 0, 0)
        taken: list[_Job] = []
        for candidate in _victim_order(candidates):
            taken.append(candidate)
            got = _plus(got, candidate.request)
            if _fits(need, got):
                break
        else:
            return None
        for victim in taken[::-1]:
            if _fits(need, _minus(got, victim.request)):
                got = _minus(got, victim.request)
                taken.remove(victim)
        return taken

    def _start(self, job: _Job, victims: list[_Job]) -> None:
        if job.was_running:
            # A victim of this same plan comes back: net, it never stopped. Whatever it
            # preempts now makes room, in the end, for the one that took its place.
            credit = self.preemptor_of.pop(job.id)
            self.victims_of[credit].remove(job.id)
        else:
            credit = job.id
        for victim in victims:
            self._stop(victim, credit)
        self.running[job.id] = job
        self.free[0] -= job.cpu
        self.free[1] -= job.ram
        self.free[2] -= job.gpu
        self._events += 1
        self.start_seq[job.id] = self._events

    def _stop(self, victim: _Job, credit: int) -> None:
        del self.running[victim.id]
        self.free[0] += victim.cpu
        self.free[1] += victim.ram
        self.free[2] += victim.gpu
        if victim.was_running:
            self.preemptor_of[victim.id] = credit
            self.victims_of.setdefault(credit, []).append(victim.id)
            return
        # It started earlier in this plan: net it never started, and the room its own
        # victims gave up now serves ``credit``.
        self.start_seq.pop(victim.id, None)
        for inherited in self.victims_of.pop(victim.id, []):
            self.preemptor_of[inherited] = credit
            self.victims_of.setdefault(credit, []).append(inherited)

    # -- pack: the search's view, and its choice realized ------------------------------

    def has_choices(self) -> bool:
        """Whether anything is waiting that could ever run: else there is no choice."""
        return any(job.possible for job in self.waiting)

    def problem(self) -> packing.Problem:
        """The snapshot as the search sees it, before any change.

        Running work that no waiting deployment outranks, and non-preemptible work,
        runs whatever the plan: it only takes room. Requests beyond the capacity are
        left out: they can never run.
        """
        top = max(job.priority for job in self.waiting if job.possible)
        in_play = [j for j in self.running.values() if j.preemptible and j.priority < top]
        self._in_play = frozenset(j.id for j in in_play)
        fixed = [j for j in self.running.values() if not (j.preemptible and j.priority < top)]
        room = _minus(
            self.cap,
            (sum(j.cpu for j in fixed), sum(j.ram for j in fixed), sum(j.gpu for j in fixed)),
        )
        by_level: dict[int, tuple[list[_Job], list[_Job]]] = {}
        for job in sorted(in_play, key=lambda j: (j.started_at, j.id)):  # earliest first
            by_level.setdefault(job.priority, ([], []))[0].append(job)
        for job in self.waiting:  # in order of consideration already
            if job.possible:
                by_level.setdefault(job.priority, ([], []))[1].append(job)
        levels = tuple(
            packing.Level(
                priority=priority,
                running=tuple(packing.Item(j.id, j.request) for j in running),
                starving=tuple(packing.Item(j.id, j.request) for j in waits if j.starving),
                waiting=tuple(packing.Item(j.id, j.request) for j in waits if not j.starving),
            )
            for priority, (running, waits) in sorted(by_level.items(), reverse=True)
        )
        return packing.Problem(capacity=self.cap, room=room, levels=levels)

    def target(self, chosen: frozenset[int]) -> _Target:
        """What the realizing walk may start, and whom it may preempt."""
        starts = frozenset(j.id for j in self.waiting if j.id in chosen)
        victims = frozenset(i for i in self._in_play if i not in chosen)
        return _Target(starts=starts, victims=victims)

    def counts(self) -> dict[int, int]:
        """How many run at each priority."""
        counts: dict[int, int] = {}
        for job in self.running.values():
            counts[job.priority] = counts.get(job.priority, 0) + 1
        return counts

    def stops_as_pack_would(self) -> bool:
        """Whether every deployment this plan stops was needed by the higher-priority
        work that runs after it: it would not fit beside that work, the running work of
        its own priority that keeps running and the non-preemptible work below it."""
        original = self.initial_running
        for victim in original.values():
            if victim.id in self.running:
                continue
            staying = [
                j
                for j in self.running.values()
                if j.priority > victim.priority
                or (j.priority == victim.priority and j.id in original)
                or (not j.preemptible and j.id in original)
            ]
            used = (
                sum(j.cpu for j in staying),
                sum(j.ram for j in staying),
                sum(j.gpu for j in staying),
            )
            if _fits(_plus(used, victim.request), self.cap):
                return False
        return True

    # -- the result ------------------------------------------------------------------

    def result(self) -> Plan:
        started = sorted(
            (j for j in self.running.values() if not j.was_running),
            key=lambda j: self.start_seq[j.id],
        )
        starts = tuple(Start(j.id, tuple(self.victims_of.get(j.id, ()))) for j in started)
        preemptions = tuple(
            Preemption(victim_id=v, preemptor_id=s.deployment_id)
            for s in starts
            for v in s.preempted
        )
        return Plan(starts=starts, preemptions=preemptions, queue=self._describe())

    def _describe(self) -> tuple[QueueEntry, ...]:
        """The queue in order of consideration, each entry with the reason it waits.

        The same walk as a pass, over a state in which nothing can start any more, so
        the room and the reservations each entry sees are exactly those that held it.
        Identical situations give identical sentences, hence the cache.
        """
        free = tuple(self.free)
        held = [0, 0, 0]
        holders: list[tuple[int, Vec]] = []  # (starving id, reservations held after it)
        lower = _LowerRoom(self.running)
        cache: dict[tuple, str] = {}
        entries: list[QueueEntry] = []
        for position, job in enumerate(self.waiting, start=1):
            lower.descend_to(job.priority)
            reserves = job.starving and job.possible
            # The held vector alone decides the owner named: a reservation that adds
            # nothing to it cannot be the one that first holds a deployment back.
            situation = (job.request, lower.room, tuple(held), reserves)
            reason = cache.get(situation)
            if reason is None:
                reason = self._explain(job, free, tuple(held), lower.room, holders, reserves)
                cache[situation] = reason
            entries.append(QueueEntry(job.id, position, reason, reserved=reserves))
            if reserves:
                _reserve(job, self.free, held)
                holders.append((job.id, tuple(held)))
        return tuple(entries)

    def _explain(
        self,
        job: _Job,
        free: Vec,
        held: Vec,
        lower: Vec,
        holders: list[tuple[int, Vec]],
        reserves: bool,
    ) -> str:
        request, seconds = job.request, self.snapshot.starvation_after_seconds or 0
        if not _fits(request, self.cap):
            return reasons.exceeds_capacity(request, self.cap)
        usable = _minus(free, held)
        if _fits(request, _plus(free, lower)) and not _fits(request, _plus(usable, lower)):
            owner = next(o for o, h in holders if not _fits(request, _plus(_minus(free, h), lower)))
            text = reasons.held_back(owner, seconds)
        else:
            shown = (max(0, usable[0]), max(0, usable[1]), max(0, usable[2]))
            text = reasons.shortage(
                request=request, usable=shown, held=held, lower=lower, capacity=self.cap
            )
        return reasons.reserved(seconds, text) if reserves else text


def _key(job: _Job) -> tuple:
    return job.key


def _compare_counts(a: dict[int, int], b: dict[int, int]) -> int:
    """-1, 0 or 1 as ``a`` (number running per priority) is worse than, as good as or
    better than ``b``, from the highest priority down."""
    for priority in sorted(a.keys() | b.keys(), reverse=True):
        mine, theirs = a.get(priority, 0), b.get(priority, 0)
        if mine != theirs:
            return 1 if mine > theirs else -1
    return 0
