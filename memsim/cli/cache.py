"""``memsim cache``: run an address stream through one cache level or a hierarchy.

Examples::

    memsim cache --capacity 32KiB --line 64 --ways 8 --policy lru --pattern zipf --accesses 1000000
    memsim cache --levels 32KiB/64/8/lru,1MiB/64/16/srrip --pattern random --footprint 4MiB
    memsim cache --capacity 32KiB --trace accesses.txt --write-through

``--levels`` is a comma-separated list of ``CAPACITY/LINE/WAYS/POLICY`` (L1 first);
it replaces the single-level options. A trace file has one access a line:
``R 0x1f40``, ``0x1f40 W`` or just an address.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hw_models.errors import Problem, SpecError
from hw_models.units import UnitError, fmt_bytes, parse_quantity
from memsim.cli._limits import add_ceiling_options, ceilings_from, count_problem, strict_int
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "cache": "set-associative caches (LRU/FIFO/random/SRRIP) over synthetic streams or traces"
}

#: Default ceiling on ``--accesses`` (raise it with ``--max-accesses``).
MAX_ACCESSES = 100_000_000

#: Working memory per synthetic access, measured (``memsim cache --accesses 1e7``
#: peaks near 380 MB): the address and write arrays and the generator's temporaries.
BYTES_PER_ACCESS = 32

if TYPE_CHECKING:
    from hw_models.cache import CacheSpec


def _bytes(text: str, option: str) -> int:
    try:
        value = parse_quantity(text.strip(), "bytes")
    except UnitError as err:
        raise SpecError([Problem(option, str(err))]) from None
    if value < 1 or value != int(value):
        raise SpecError([Problem(option, f"expected a whole number of bytes >= 1, found {text!r}")])
    return int(value)


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SpecError([Problem(option, f"expected an integer, found {text!r}")]) from None


def _specs(args: argparse.Namespace) -> list[CacheSpec]:
    from hw_models.cache import CacheSpec

    common = {"write_back": not args.write_through, "write_allocate": not args.no_write_allocate}
    if not args.levels:
        data = {
            "capacity_bytes": _bytes(args.capacity, "--capacity"),
            "line_bytes": _int(args.line, "--line"),
            "ways": _int(args.ways, "--ways"),
            "policy": args.policy,
            **common,
        }
        return _plausible(
            [CacheSpec.parse(data, prefix="cache", ceilings=ceilings_from(args))], args
        )
    specs = []
    problems: list[Problem] = []
    for i, item in enumerate(args.levels.split(",")):
        path = f"levels[{i}]"
        parts = item.strip().split("/")
        if len(parts) != 4:
            problems.append(
                Problem(path, f"expected CAPACITY/LINE/WAYS/POLICY, found {item.strip()!r}")
            )
            continue
        try:
            data = {
                "capacity_bytes": _bytes(parts[0], f"{path}.capacity_bytes"),
                "line_bytes": _int(parts[1], f"{path}.line_bytes"),
                "ways": _int(parts[2], f"{path}.ways"),
                "policy": parts[3].strip().lower(),
                "level": i + 1,
                **common,
            }
            specs.append(CacheSpec.parse(data, prefix=path, ceilings=ceilings_from(args)))
        except SpecError as err:
            problems += err.problems
    if problems:
        raise SpecError(problems)
    return _plausible(specs, args)


def _plausible(specs: list[CacheSpec], args: argparse.Namespace) -> list[CacheSpec]:
    """Refuse a cache whose line count (its simulator's working memory) is absurd."""
    ceilings_from(args).check_counts(
        (f"cache[{i}] capacity/line", "cache_lines", int(s.capacity_bytes // s.line_bytes))
        for i, s in enumerate(specs)
    )
    return specs


def run(args: argparse.Namespace) -> int:
    """Simulate and print per-level counts."""
    from memsim.cache import CacheHierarchy, read_address_trace, synthetic_stream  # numba

    if args.seed < 0:
        raise SpecError([Problem("--seed", f"expected an integer >= 0, found {args.seed}")])
    specs = _specs(args)
    line = specs[0].line_bytes
    if args.trace:
        addrs, writes = read_address_trace(args.trace)
        if addrs.size == 0:
            raise SpecError([Problem(str(args.trace), "the trace holds no accesses")])
        source = f"trace {args.trace}"
    else:
        problem = count_problem(
            args.accesses,
            option="--accesses",
            ceiling=args.max_accesses,
            raise_with="--max-accesses",
            bytes_each=BYTES_PER_ACCESS,
            what="accesses",
        )
        if problem:
            raise SpecError([problem])
        footprint = (
            _bytes(args.footprint, "--footprint")
            if args.footprint
            else 4 * int(specs[-1].capacity_bytes)
        )
        addrs, writes = synthetic_stream(
            args.pattern,
            args.accesses,
            footprint_bytes=footprint,
            line_bytes=line,
            write_fraction=args.write_fraction,
            stride_bytes=_bytes(args.stride, "--stride"),
            zipf_s=args.zipf_s,
            seed=args.seed,
        )
        source = f"{args.pattern}, footprint {fmt_bytes(footprint)}"
    hierarchy = CacheHierarchy(specs, seed=args.seed)
    result = hierarchy.access(addrs, writes)
    levels: list[dict[str, Any]] = []
    for spec, st in zip(specs, result.levels, strict=True):
        geometry: dict[str, Any] = {
            "capacity_bytes": spec.capacity_bytes,
            "line_bytes": spec.line_bytes,
            "ways": spec.ways,
            "sets": spec.sets,
            "policy": spec.policy,
            "write_back": spec.write_back,
            "write_allocate": spec.write_allocate,
        }
        levels.append(geometry | st.to_dict())
    out: dict[str, Any] = {
        "source": source,
        "accesses": int(addrs.size),
        "levels": levels,
        "memory_reads": result.memory_reads,
        "memory_writes": result.memory_writes,
    }
    if args.format == "json":
        print_json(out)
        return 0
    print(f"{out['accesses']} accesses ({source})")
    print_table(
        [
            [
                lv["name"],
                fmt_bytes(lv["capacity_bytes"]),
                f"{lv['ways']}-way x {lv['sets']} sets",
                lv["policy"],
                lv["accesses"],
                lv["hits"],
                lv["misses"],
                f"{lv['hit_rate']:.2%}",
                lv["evictions"],
                lv["writebacks"],
            ]
            for lv in levels
        ],
        ["level", "capacity", "geometry", "policy", "accesses", "hits", "misses", "hit rate",
         "evictions", "writebacks"],
    )  # fmt: skip
    print(f"memory: {out['memory_reads']} line reads, {out['memory_writes']} writes")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cache``."""
    p = sub.add_parser(
        "cache",
        help=COMMANDS["cache"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--capacity", default="32KiB", help="capacity, e.g. 32KiB")
    p.add_argument("--line", default="64", help="line size in bytes (a power of two)")
    p.add_argument("--ways", default="8", help="associativity")
    p.add_argument("--policy", default="lru", help="lru | fifo | random | srrip")
    p.add_argument("--levels", help="CAP/LINE/WAYS/POLICY,... (L1 first); overrides the above")
    p.add_argument("--write-through", action="store_true", help="write-through (default back)")
    p.add_argument("--no-write-allocate", action="store_true", help="write misses bypass")
    p.add_argument("--pattern", default="random", help="stream | random | strided | zipf")
    p.add_argument("--accesses", type=strict_int, default=1_000_000, help="synthetic accesses")
    p.add_argument(
        "--max-accesses",
        type=strict_int,
        default=MAX_ACCESSES,
        metavar="N",
        help=f"ceiling on --accesses (default {MAX_ACCESSES:,}), a guard against typos",
    )
    p.add_argument("--footprint", help="bytes the pattern covers (default 4 x last level)")
    p.add_argument("--stride", default="1KiB", help="strided pattern's stride")
    p.add_argument("--zipf-s", type=float, default=1.0, help="zipf exponent")
    p.add_argument("--write-fraction", type=float, default=0.3)
    p.add_argument("--trace", help="text trace file (replaces --pattern)")
    p.add_argument("--seed", type=strict_int, default=0)
    add_ceiling_options(p)
    add_format_option(p)
    p.set_defaults(func=run)
