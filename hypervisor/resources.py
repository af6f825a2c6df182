"""Resource dimensions and vectors: what a deployment requests and a cluster has.

A leaf module (no Django import): models, constraints, serializers, the admin, the
pages, the planner's reasons, the metrics and the audit all derive from ``DIMENSIONS``.
Adding a dimension is one ``Dimension`` line here, then `makemigrations`
(docs/architecture.md says what else: the planner's unrolled vectors).

Stored values are exact integers in each dimension's stored unit: CPU in millicores,
RAM in MiB, GPUs as whole devices. The API shows ``stored / scale`` (cores for CPU).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, make_dataclass
from decimal import Decimal


def _cores(millicores: int) -> str:
    """Millicores as cores with no trailing zeros: 500 -> "0.5", 2000 -> "2"."""
    whole, fraction = divmod(millicores, 1000)
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:03d}".rstrip("0")


def _mebibytes(ram_mb: int) -> str:
    """MiB as people read it: `512 MiB`, `1.5 GiB`, `2 TiB`."""
    for unit, size in (("TiB", 1024 * 1024), ("GiB", 1024)):
        if ram_mb >= size:
            value = Decimal(ram_mb) / size
            return f"{value.quantize(Decimal('0.1')).normalize():f} {unit}"
    return f"{ram_mb} MiB"


@dataclass(frozen=True)
class Dimension:
    """One resource dimension and everything that is written per dimension."""

    name: str  # the vector's attribute; model fields <name>, capacity_<name>, allocated_<name>
    api_field: str  # its key in the API's resource objects
    label: str  # how people call it: "CPU"
    unit: str  # the API's unit, for help texts: "cores"
    api_help: str  # the serializer's help text
    scale: int  # stored units per API unit (1000: the API's cores are stored in millicores)
    decimals: int  # decimal places the API accepts
    maximum: int  # documented maximum, in stored units (API.md: beyond it is 400)
    big: bool  # needs a 64-bit column
    stored_help: str  # the model field's help text
    exact: Callable[[int], str]  # "0.5 CPU", "4096 MiB", "1 GPU": reasons, errors, audit
    readable: Callable[[int], str]  # "0.5", "4 GiB", "1": the pages' figures
    in_line: Callable[[int], str]  # "0.5 CPU", "4 GiB", "1 GPU": one-line summaries
    of_capacity: Callable[[int], str]  # "8 cores", "32 GiB", "4": a capacity on a bar


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        name="cpu",
        api_field="cpu",
        label="CPU",
        unit="cores",
        api_help="Cores, at most 3 decimals (0.25 = 250 millicores).",
        scale=1000,
        decimals=3,
        maximum=100_000_000,  # 100,000 cores
        big=True,
        stored_help="Millicores.",
        exact=lambda v: f"{_cores(v)} CPU",
        readable=_cores,
        in_line=lambda v: f"{_cores(v)} CPU",
        of_capacity=lambda v: f"{_cores(v)} cores",
    ),
    Dimension(
        name="ram_mb",
        api_field="ram_mb",
        label="RAM",
        unit="MiB",
        api_help="MiB.",
        scale=1,
        decimals=0,
        maximum=1_000_000_000,  # about 954 TiB
        big=True,
        stored_help="",
        exact=lambda v: f"{v} MiB",
        readable=_mebibytes,
        in_line=_mebibytes,
        of_capacity=_mebibytes,
    ),
    Dimension(
        name="gpu",
        api_field="gpu",
        label="GPU",
        unit="devices",
        api_help="Whole devices.",
        scale=1,
        decimals=0,
        maximum=100_000,
        big=False,
        stored_help="",
        exact=lambda v: f"{v} GPU",
        readable=str,
        in_line=lambda v: f"{v} GPU",
        of_capacity=str,
    ),
)
NAMES: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)
BY_NAME: dict[str, Dimension] = {d.name: d for d in DIMENSIONS}


class _Vector:
    """The only arithmetic on resource vectors: plus, minus, fits, shortfall."""

    __slots__ = ()
    dimensions: tuple[Dimension, ...]  # set by vector_class
    _values_of: Callable[[_Vector], tuple[int, ...]]

    def values(self) -> tuple[int, ...]:
        return type(self)._values_of(self)

    def __iter__(self) -> Iterator[int]:
        return iter(self.values())

    def __add__(self, other: _Vector) -> _Vector:
        return type(self)(*map(operator.add, self.values(), other.values()))

    def __sub__(self, other: _Vector) -> _Vector:
        return type(self)(*map(operator.sub, self.values(), other.values()))

    def fits_in(self, room: _Vector) -> bool:
        """True when every dimension of ``self`` is at most that of ``room``."""
        return all(map(operator.le, self.values(), room.values()))

    def shortfall(self, room: _Vector) -> _Vector:
        """What ``room`` lacks, per dimension, to hold ``self`` (never negative)."""
        pairs = zip(self.values(), room.values(), strict=True)
        return type(self)(*(max(0, a - b) for a, b in pairs))

    def lacking(self, room: _Vector) -> list[Dimension]:
        """The dimensions in which ``room`` cannot hold ``self``."""
        short = self.shortfall(room).values()
        return [d for d, amount in zip(self.dimensions, short, strict=True) if amount]

    @classmethod
    def total(cls, vectors: Iterable[_Vector]) -> _Vector:
        """The sum of ``vectors`` (zero when there are none), one pass per dimension in C:
        what a pass adds up over hundreds of rows."""
        return cls(*map(sum, zip(*(v.values() for v in vectors), strict=True)))

    @classmethod
    def of(cls, obj: object, prefix: str = "") -> _Vector:
        """The vector held by a row's fields ``<prefix><name>`` (model or plain row)."""
        return cls(*(getattr(obj, prefix + d.name) for d in cls.dimensions))

    def fields(self, prefix: str = "") -> dict[str, int]:
        """The vector as field values ``<prefix><name>``: the inverse of ``of``."""
        return {prefix + d.name: v for d, v in zip(self.dimensions, self.values(), strict=True)}

    def in_line(self) -> str:
        """A request or capacity in one line for people: ``2.5 CPU · 4 GiB · 1 GPU``."""
        return " · ".join(d.in_line(v) for d, v in zip(self.dimensions, self.values(), strict=True))


def vector_class(dimensions: tuple[Dimension, ...]) -> type[_Vector]:
    """A frozen dataclass with one int field per dimension, in the given order; a
    missing dimension is 0. ``Resources`` is the one of ``DIMENSIONS``."""
    names = [d.name for d in dimensions]
    cls = make_dataclass(
        "Resources",
        [(name, int, field(default=0)) for name in names],
        bases=(_Vector,),
        frozen=True,
        slots=True,
    )
    cls.__module__ = __name__
    cls.__doc__ = "A resource vector: one exact integer per dimension."
    cls.dimensions = dimensions
    getter = operator.attrgetter(*names)
    cls._values_of = getter if len(names) > 1 else (lambda v: (getter(v),))
    return cls


Resources = vector_class(DIMENSIONS)
