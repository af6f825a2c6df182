"""The walk every policy shares: start what fits, preempt in guarantee 5's order, hold
starvation reservations, and explain the queue.

Guarantees, as API.md numbers them: 3 "priority" (no queued deployment could start by
preempting only preemptible running deployments of strictly lower priority), 4 "no idle
room" (no queued deployment fits in the free room, but for starvation reservations), 5
"minimal preemption" (only lower-priority preemptible work, lowest priority first, among
equals the most recently started first, and no more than needed), 6 "order" (within a
priority, queue order).

Internally a deployment is a mutable ``Job`` with its vector unpacked into three ints:
the walk runs once per waiting deployment per pass, and attribute access on plain ints
is several times cheaper than building ``Resources`` objects.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import planner.reasons as reasons
from hypervisor.resources import Resources
from planner.model import (
    ClusterSnapshot,
    Plan,
    Preemption,
    QueueEntry,
    RunningDeployment,
    Start,
    WaitingDeployment,
    is_starving,
)

Vec = tuple[int, int, int]  # (cpu millicores, ram MiB, gpus)


class Job:
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


def _victim_order(jobs: list[Job]) -> list[Job]:
    """Guarantee 5's preference (minimal preemption): lowest priority first, then the most
    recently started, then the highest id (two stable sorts: datetimes cannot be negated)."""
    jobs = sorted(jobs, key=lambda j: (j.started_at, j.id), reverse=True)
    jobs.sort(key=lambda j: j.priority)
    return jobs


def fits(request: Vec, room: Vec) -> bool:
    return request[0] <= room[0] and request[1] <= room[1] and request[2] <= room[2]


def plus(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def minus(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def total(jobs: Iterable[Job]) -> Vec:
    """The sum of the requests of ``jobs``."""
    cpu = ram = gpu = 0
    for job in jobs:
        cpu, ram, gpu = cpu + job.cpu, ram + job.ram, gpu + job.gpu
    return (cpu, ram, gpu)


def _reserve(job: Job, free: list[int], held: list[int]) -> None:
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

    def __init__(self, running: dict[int, Job]) -> None:
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

    def remove(self, job: Job) -> None:
        self.cpu -= job.cpu
        self.ram -= job.ram
        self.gpu -= job.gpu


def _in_order(
    queue: list[Job], returned: list[tuple[tuple, Job]], order: Callable[[Job], tuple]
) -> Iterator[Job]:
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
class Target:
    """A state chosen by the ``pack`` search, and the order that realizes it.

    The walk settles each priority completely before the next one down takes any room:
    within a priority, first the victims of this plan coming back (net, they never
    stopped: they keep their place ahead of work of their own priority), then the
    starving deployments (they start or hold their reservation, as in the search), then
    the starts the search chose (preempting among the victims it chose, or else under the
    fifo rule), then everything else of that priority under the fifo rules, so that
    guarantees 3 (priority) and 4 (no idle room) hold at each priority before lower ones
    are placed.
    """

    starts: frozenset[int]
    victims: frozenset[int]

    def order(self, job: Job) -> tuple:
        if job.was_running:
            group = 0
        elif job.starving:
            group = 1
        else:
            group = 2 if job.id in self.starts else 3
        return (-job.priority, group, job.key)


class Engine:
    """The mutable state of one plan: what runs, what waits, who preempted whom."""

    def __init__(self, snapshot: ClusterSnapshot, like: Engine | None = None) -> None:
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
                job.possible = fits(job.request, self.cap)
        self.initial_running: dict[int, Job] = dict(self.running)
        self.initial_waiting: list[Job] = list(self.waiting)
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
        self._events = 0

    def _running_job(self, r: RunningDeployment) -> Job:
        queued_at = r.queued_at if r.queued_at is not None else r.started_at
        starving = is_starving(queued_at, self.snapshot)
        return Job(
            id=r.id,
            resources=r.resources,
            priority=r.priority,
            preemptible=r.preemptible,
            started_at=r.started_at,
            queued_at=queued_at,
            was_running=True,
            starving=starving,
        )

    def _waiting_job(self, w: WaitingDeployment) -> Job:
        return Job(
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

    def settle(self, target: Target | None = None) -> None:
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

    def _pass(self, target: Target | None) -> bool:
        order = _key if target is None else target.order
        queue = self.waiting if target is None else sorted(self.waiting, key=order)
        held = [0, 0, 0]  # reservations of the starving deployments met so far
        lower = _LowerRoom(self.running)
        returned: list[tuple[tuple, Job]] = []
        still: list[Job] = []
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
        job: Job,
        held: list[int],
        lower: _LowerRoom,
        returned: list[tuple[tuple, Job]],
        target: Target | None,
        order: Callable[[Job], tuple],
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
            if not fits(job.request, plus(usable, lower.room)):
                return False
            victims = self._choose_victims(job, usable, None)
        if victims is None:
            return False
        for victim in victims:
            lower.remove(victim)
            heapq.heappush(returned, (order(victim), victim))
        self._start(job, victims)
        return True

    def _choose_victims(self, job: Job, usable: Vec, target: Target | None) -> list[Job] | None:
        """Guarantee 5 (minimal preemption): the shortest prefix, in preference order, of
        the preemptible lower-priority deployments after which ``job`` fits, then pruned
        last-taken first of every victim the others make unnecessary. None when even all
        would not do."""
        candidates = [
            r
            for r in self.running.values()
            if r.preemptible
            and r.priority < job.priority
            and (target is None or r.id in target.victims)
        ]
        need = minus(job.request, usable)
        got = (0, 0, 0)
        taken: list[Job] = []
        for candidate in _victim_order(candidates):
            taken.append(candidate)
            got = plus(got, candidate.request)
            if fits(need, got):
                break
        else:
            return None
        for victim in taken[::-1]:
            if fits(need, minus(got, victim.request)):
                got = minus(got, victim.request)
                taken.remove(victim)
        return taken

    def _start(self, job: Job, victims: list[Job]) -> None:
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

    def _stop(self, victim: Job, credit: int) -> None:
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

    def has_choices(self) -> bool:
        """Whether anything is waiting that could ever run: else there is no choice."""
        return any(job.possible for job in self.waiting)

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
        job: Job,
        free: Vec,
        held: Vec,
        lower: Vec,
        holders: list[tuple[int, Vec]],
        reserves: bool,
    ) -> str:
        request, seconds = job.request, self.snapshot.starvation_after_seconds or 0
        if not fits(request, self.cap):
            return reasons.exceeds_capacity(request, self.cap)
        usable = minus(free, held)
        if fits(request, plus(free, lower)) and not fits(request, plus(usable, lower)):
            owner = next(o for o, h in holders if not fits(request, plus(minus(free, h), lower)))
            text = reasons.held_back(owner, seconds)
        else:
            shown = (max(0, usable[0]), max(0, usable[1]), max(0, usable[2]))
            text = reasons.shortage(
                request=request, usable=shown, held=held, lower=lower, capacity=self.cap
            )
        return reasons.reserved(seconds, text) if reserves else text


def _key(job: Job) -> tuple:
    return job.key
