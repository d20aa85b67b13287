"""Interning: descriptors become integer-coded, field-major arrays the kernel reads.

Every attribute gets one vocabulary shared by sources and targets, so equal
values have equal codes on both sides; code 0 is the absent value. Int and
version codes are ranks in sorted order, so ``ge``/``le`` compare codes; the
``version`` rule reads a major code and a minor rank; sets are bitmasks over
the attribute's items (several 64-bit words past 64 items). Identical
descriptors collapse into classes, and COMPATIBLE records are compiled into
flat tables of tests on those codes.

The kernel works on narrow unsigned *lanes* (16, 32 or 64 bits, the smallest
that holds every code), so that its loops over targets handle many pairs per
vector instruction. Each rule that can fail is an *op* with its own bit in a
pair's failure mask: one lane, or, when the rules outnumber a lane's bits
(past docs/model.md section 8's shared bit 58 the reasons share a bit, but records still
tell those attributes apart), several lanes, *failure words*. ``bit_reasons``
maps the failure bits to docs/model.md section 8's reason bits.
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate, chain
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

import msgspec
import numpy as np

from .devices import Descriptor, DeviceSet, fleet_attribute_order
from .gcpause import gc_paused
from .codes import (
    OP_CONFIRM,
    OP_GE,
    OP_LE,
    OP_MIGRATABLE,
    OP_NE,
    OP_REQUIRED,
    OP_SUPERSET,
    OP_VERSION,
    TEST_IN_CODES,
    TEST_SUBSET,
)
from .policy import Policy
from .reasons import NOT_MIGRATABLE, OPAQUE, SHARED_ATTRIBUTE_BIT, attribute_bit
from .records import Accept, AnyOf, AnyValue, GroundedRecord, SubsetOf
from .values import is_absent

_json_text = msgspec.json.Encoder().encode
_RULE_OPS = {"exact": OP_NE, "version": OP_VERSION, "superset": OP_SUPERSET, "ge": OP_GE, "le": OP_LE}
LANE_TYPES = (np.uint16, np.uint32, np.uint64)
SMALL_GROUP = 64  # columns grouped with a dict below this, with np.unique above (fixed costs)


class _Vocabulary:
    """Codes of one attribute's values, shared by both sides; 0 is the absent value.

    Int and version codes are ``2 * (rank + 1)``: a value the vocabulary has
    not seen (a source's, against prepared targets) gets the odd code between
    its neighbours, so comparisons stay exact. Other unseen values share one
    code that nothing seen has; an unseen set item sets a bit no target has.
    """

    def __init__(self, kind: str, columns: Sequence[_Column]) -> None:
        self.kind = kind
        self.ordered = kind in ("int", "version")
        if kind == "version":
            # Versions are coded by their canonical text, one per key, which hashes at C speed
            # (a Version's hash is Python code), and ranked by key. Each side's values come
            # sorted by key, so the sort below merges runs.
            key_of: dict[Any, Any] = {}
            for c in columns:
                key_of.update(c.by_key)
            key_of.pop(None, None)
            distinct = sorted(key_of, key=key_of.__getitem__)
            self.keys = [key_of[text] for text in distinct]  # in order, for the rank of unseen versions
            parts = np.concatenate([c.parts[:, c.present] for c in columns], axis=1)
            self.majors, self.minors = np.unique(parts[0]), np.unique(parts[1])
            self.major_list, self.minor_list = self.majors.tolist(), self.minors.tolist()  # for bisect
            self.unseen_major = len(self.majors) + 1
        else:
            index = dict.fromkeys(chain.from_iterable(c.values for c in columns))
            index.pop(None, None)
            index.pop(frozenset(), None)
            distinct = list(index)
            if self.ordered:
                distinct.sort()
        self.values = distinct
        step = 2 if self.ordered else 1
        self.code: dict[Any, int] = dict(zip(distinct, range(step, step * (len(distinct) + 1), step)))  # by key: see :meth:`key`
        self.code[None] = 0
        self.code[frozenset()] = 0
        self.unseen_code = step * len(distinct) + 1
        self.words = 0
        if kind == "set":
            self.bit = {item: i for i, item in enumerate(sorted({item for s in distinct for item in s}))}

    def key(self, value: Any) -> Any:
        """What equal values share, which ``code`` is keyed by: a version's canonical text, else the value."""
        return value.canonical if self.kind == "version" and value is not None else value

    @property
    def largest_code(self) -> int:
        return self.unseen_code + 1

    def code_of(self, value: Any) -> int:
        code = self.code.get(self.key(value))
        if code is not None:
            return code
        if self.kind == "version":
            return 2 * bisect.bisect_left(self.keys, value.key) + 1
        if self.ordered:
            return 2 * bisect.bisect_left(self.values, value) + 1
        return self.unseen_code

    def codes_of(self, column: _Column) -> list[int]:
        """The code of each of a column's values."""
        codes = list(map(self.code.get, column.canonical if self.kind == "version" else column.values))
        if None in codes:  # values the vocabulary has not seen (frozen sources)
            return [self.code_of(v) if c is None else c for v, c in zip(column.values, codes)]
        return codes  # type: ignore[return-value]  # no None left

    def use_lane(self, lane: type) -> None:
        """Set masks are made of lane-wide words, so the superset loop reads one width."""
        if self.kind == "set":
            self.lane, self.lane_bits = lane, np.iinfo(lane).bits
            self.words = max(1, -(-(len(self.bit) + 1) // self.lane_bits))  # + the unseen-item bit

    def mask(self, items: Iterable[str], *, literal: bool = False) -> np.ndarray:
        """The bits of a set; an item never seen sets the unseen-item bit, except in a
        record's literal (no source that has an unseen item is a subset of it)."""
        return np.array(self._words(items, literal), dtype=self.lane)

    def _words(self, items: Iterable[str], literal: bool = False) -> list[int]:
        words = [0] * self.words
        for item in items:
            bit = self.bit.get(item, None if literal else len(self.bit))
            if bit is not None:
                words[bit // self.lane_bits] |= 1 << (bit % self.lane_bits)
        return words

    def version_table(self, column: _Column, scored: bool) -> np.ndarray:
        """int64 [2 or 6, len(column.values)]: of each version the code of its major (1 + its
        rank among the vocabulary's majors, past them for an unseen one) and the rank code of
        its minor (odd between seen ones, like unseen values), and if ``scored`` what the
        scores read (has it, major, minor, patch); 0 where absent."""
        if len(column.values) <= SMALL_GROUP:  # a request's few sources: NumPy's fixed costs would dominate
            return np.array([self._version_row(v, scored) for v in column.values], dtype=np.int64).reshape(-1, 6 if scored else 2).T
        major, minor, _ = parts = column.parts
        below = np.searchsorted(self.majors, major)
        seen = np.searchsorted(self.majors, major, side="right") > below
        major_code = np.where(seen, below + 1, self.unseen_major)
        # Seen: 2 * (rank + 1), its two bounds being rank and rank + 1; unseen: 2 * rank + 1.
        minor_code = np.searchsorted(self.minors, minor) + np.searchsorted(self.minors, minor, side="right") + 1
        present = column.present  # an absent version's parts are 0
        rows = [major_code * present, minor_code * present, *([present, *parts] if scored else [])]
        return np.array(rows, dtype=np.int64).reshape(len(rows), len(present))

    def _version_row(self, v: Any, scored: bool) -> tuple[int, ...]:
        """One version's column of :meth:`version_table`."""
        if v is None:
            return (0,) * (6 if scored else 2)
        major, minor, patch = (*v.parts, 0, 0, 0)[:3]
        majors, minors = self.major_list, self.minor_list
        below = bisect.bisect_left(majors, major)
        major_code = below + 1 if below < len(majors) and majors[below] == major else self.unseen_major
        minor_code = bisect.bisect_left(minors, minor) + bisect.bisect_right(minors, minor) + 1
        return (major_code, minor_code, 1, major, minor, patch) if scored else (major_code, minor_code)

    def mask_table(self, column: _Column) -> np.ndarray:
        """lanes [words, len(column.values)]: the mask of each set (absent: empty)."""
        words = [self._words(v) if v is not None else [0] * self.words for v in column.values]
        return np.array(words, dtype=self.lane).reshape(len(column.values), self.words).T


@dataclass
class RecordTables:
    """COMPATIBLE records held by one side, compiled to tests on the other side's codes.

    Record ``r`` matches when the tests ``common_begin[r]..common_end[r]`` pass
    (fields equal in every alternative) and, for some alternative ``a`` in
    ``alt_start[r]..alt_start[r+1]``, the tests ``alt_begin[a]..alt_end[a]`` pass.
    """

    cmask: np.ndarray  # lanes [n_rec, failure words]: failure bits of the attributes the record constrains
    common_begin: np.ndarray
    common_end: np.ndarray
    alt_start: np.ndarray
    alt_begin: np.ndarray
    alt_end: np.ndarray
    test_row: np.ndarray  # int32: codes row (IN) or first mask word (SUBSET)
    test_kind: np.ndarray  # int32: TEST_IN_CODES or TEST_SUBSET
    test_start: np.ndarray  # int64: into code_pool (IN) or mask_pool (SUBSET)
    test_len: np.ndarray  # int64
    code_pool: np.ndarray  # lanes
    mask_pool: np.ndarray  # lanes


@dataclass
class Side:
    """The classes of one side, field-major: ``codes[row, class]``."""

    class_of: np.ndarray  # int64 [n_devices]
    codes: np.ndarray  # lanes [n_attributes + 2, n_classes]; the last two rows: opaque, migratable
    vmajor: np.ndarray  # lanes [n_version_attributes, n_classes]: 1 + rank of the major, 0 absent
    vminor: np.ndarray  # lanes: rank of the minor
    masks: np.ndarray  # lanes [n_mask_words, n_classes]
    constrained: np.ndarray  # lanes [failure words, n_classes]: failure bits its records constrain (all ones: records do not count)
    record_set: np.ndarray  # int32 [n_classes]: the class's records as a set id, 0 for none
    set_start: np.ndarray  # int64 [n_sets + 1]: set s holds set_records[set_start[s]:set_start[s + 1]]
    set_records: np.ndarray  # int32: into this side's RecordTables
    records: RecordTables
    # score inputs, read only for compatible pairs
    exact_key: np.ndarray  # int64: equal iff the descriptors agree on every non-ignore attribute
    has_version: np.ndarray  # uint8
    major: np.ndarray  # int64
    minor: np.ndarray  # int64
    patch: np.ndarray  # int64
    newest_rank: np.ndarray  # int64: rank of the version among the targets' (targets only)

    @property
    def n_classes(self) -> int:
        return int(self.codes.shape[1])


@dataclass
class Interned:
    policy: Policy
    attributes: list[str]
    lane: type  # np.uint16, np.uint32 or np.uint64
    sources: Side
    targets: Side
    op_kind: np.ndarray  # int32
    op_row: np.ndarray  # int32: codes row, version slot or first mask word
    op_words: np.ndarray  # int32: mask words of a superset op
    op_word: np.ndarray  # int32: the failure word that holds the op's bit
    op_bit: np.ndarray  # lanes: the op's failure bit in its word
    bit_reasons: np.ndarray  # uint64 [failure words * lane bits]: reason bits of each failure bit
    identity_bits: bool  # one failure word, whose bits below the lane's top two are the reason bits themselves
    attribute_bits: int  # failure bits that belong to attributes (not opaque or migratable), of all words
    failure_words: int  # lanes per failure mask
    type_row: int  # codes row of score_type, -1 if none
    prefer_newest: bool
    opaque_table: np.ndarray  # uint8 [source strings + 1, target strings + 1]: a confirmer's answers (empty without one)
    opaque_rows: np.ndarray  # int32 [opaque codes]: each code's row of opaque_table (0: absent, or no source's)
    opaque_columns: np.ndarray  # int32 [opaque codes]: each code's column (0: absent, or no target's)
    # Where the native kernel keeps what it derives from the targets, when they outlive one
    # match (a TargetIndex's prepared targets); None: derive it again every time.
    kernel_cache: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a Dask worker) without ``kernel_cache``: native objects, which the
        process that unpickles derives again."""
        return {**self.__dict__, "kernel_cache": None}

    @cached_property
    def reason_table(self) -> np.ndarray:
        """uint64 [failure words * lane bytes, 256]: the reason bits of every byte value at every
        byte of a failure mask (how failures become reasons when the bits are not the reason bits)."""
        reasons = self.bit_reasons.reshape(-1, 8, 1)  # [byte of the mask, bit of the byte, 1]
        has_bit = (np.arange(256)[None, :] >> np.arange(8)[:, None]) & 1 == 1  # [bit, byte value]
        table: np.ndarray = np.bitwise_or.reduce(np.where(has_bit, reasons, np.uint64(0)), axis=1)
        return table


# What DeviceSet.interning keeps of the sources' last partner starts its key: (JOINED, what).
JOINED = "joined"
Kept = TypeVar("Kept")


def kept_for_partner(sources: DeviceSet, targets: DeviceSet, what: str, key: Any, make: Callable[[], Kept]) -> Kept:
    """``make()`` for these two sets, kept on the sources' set for its last partner (with ``key``,
    which must equal for it to serve again: the policy): a set matched again with the same
    partner finds it, as a data engineer keeps two frames coded together. What is kept so reads
    only what a set cannot change (its descriptors, ids and hosts, as :func:`side_values` and
    ``DeviceSet.host_codes`` do); the partner is held weakly."""
    kept = sources.interning.get((JOINED, what))
    if kept is not None and kept[0]() is targets and kept[1] == key:
        found: Kept = kept[2]
        return found
    made = make()
    sources.interning[(JOINED, what)] = (weakref.ref(targets), key, made)
    return made


def intern(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    confirm: Callable[[str, str], bool] | None = None,
) -> Interned:
    """Both sides of one match, against vocabularies of both sides' values.

    What each side holds on its own (its values, their numbering, its classes) is found at
    its first match and kept on its device set (:func:`side_values`); a match then only
    joins the two sides' vocabularies of distinct values and codes the classes. That join is
    kept for the sources' last partner (:func:`kept_for_partner`): the same two sets matched
    again code nothing again. A caller's confirmer is asked afresh every time.
    """
    if confirm is not None:
        return _joined(sources, targets, policy, confirm)

    def kept_join() -> Interned:
        joined = _joined(sources, targets, policy, None)
        joined.kernel_cache = {}  # the targets outlive this match: the kernel keeps what it derives of them
        return joined

    return kept_for_partner(sources, targets, "interned", policy, kept_join)


def _joined(
    sources: DeviceSet, targets: DeviceSet, policy: Policy, confirm: Callable[[str, str], bool] | None
) -> Interned:
    with gc_paused():  # collections were half of interning's time at 30,000 a side
        attributes = fleet_attribute_order(policy, sources, targets)
        sides = [side_values(sources, policy, "source"), side_values(targets, policy, "target")]
        context = _Context(policy, attributes, sides, confirm)
        return context.interned(context.side(sources, "source"), context.side(targets, "target"))


class PreparedTargets:
    """A target fleet interned once, against which small sets of sources are interned quickly.

    Vocabularies hold the targets' values and their records' literals, so a
    source's values are coded without touching the targets again.
    """

    def __init__(self, targets: DeviceSet, policy: Policy) -> None:
        self.attributes = policy.attribute_order(targets.attribute_names())
        literals = [_literals(record) for d in targets.descriptors for record in d.records]
        sides = [side_values(targets, policy, "target")]
        self.context = _Context(policy, self.attributes, sides, None, literals, every_fixed_op=True)
        self.targets = self.context.side(targets, "target")
        self.kernel_cache: dict[str, Any] = {}

    def supports(self, sources: DeviceSet) -> bool:
        """Whether these sources can be interned against the prepared targets: not when
        their own records count (they may constrain attributes no target has)."""
        return not (self.context.uses_source_records and any(d.records for d in sources.descriptors))

    def hopeless(self, sources: DeviceSet) -> np.ndarray:
        """bool per source: it has a value for an attribute no target has, whose rule then fails."""
        known, policy = set(self.attributes), self.context.policy
        per_descriptor = np.array(
            [
                any(
                    name not in known and policy.attribute(name).rule not in ("dynamic", "ignore")
                    for name, value in d.values.items()
                    if not is_absent(value)
                )
                for d in sources.descriptors
            ],
            dtype=bool,
        )
        return per_descriptor[sources.descriptor_of] if len(sources) else np.zeros(0, dtype=bool)

    def with_sources(self, sources: DeviceSet) -> Interned:
        if len(sources.descriptors) == 1 and not (self.context.uses_source_records and sources.descriptors[0].records):
            side = self._one_class_side(sources)  # a scheduler's request: one descriptor
        else:
            side = self.context.side(sources, "source", frozen=True)
        interned = self.context.interned(side, self.targets)
        interned.kernel_cache = self.kernel_cache
        return interned

    def _one_class_side(self, sources: DeviceSet) -> Side:
        """What ``context.side(sources, "source", frozen=True)`` makes of one descriptor whose
        records do not count (it has none, or the policy does not read the sources'), without
        grouping: each value looked up once in the frozen vocabularies."""
        context, (descriptor,) = self.context, sources.descriptors
        held = descriptor.values
        values = [held.get(name) for name in context.attributes]
        opaque = context.opaque_codes
        codes = np.array(
            [
                *(v.code_of(value) for v, value in zip(context.vocabularies, values)),
                opaque.get(descriptor.migration_version, len(opaque)),
                descriptor.migratable,
            ],
            dtype=np.int64,
        )[:, None]
        lane = context.lane
        versions = {
            i: context.vocabularies[i].version_table(_Column([values[i]], "version"), i == context.score_version)
            for i in context.version_slot
        }
        if context.score_version >= 0:
            has_version, major, minor, patch = versions[context.score_version][2:]
        else:
            has_version, major, minor, patch = np.zeros((4, 1), dtype=np.int64)
        masks = [context.vocabularies[i].mask_table(_Column([values[i]], "set")) for i in context.word_start]
        no_records = np.zeros(1, dtype=np.int32)
        constrained: np.ndarray
        if context.uses_source_records:  # a class without records then constrains nothing
            constrained = np.zeros((context.failure_words, 1), dtype=lane)
        else:
            constrained = np.full((context.failure_words, 1), np.iinfo(lane).max, dtype=lane)
        set_start, set_records = context._no_sets
        return Side(
            class_of=np.zeros(len(sources), dtype=np.int64),
            codes=codes.astype(lane),
            vmajor=np.array([v[0] for v in versions.values()], dtype=lane).reshape(-1, 1),
            vminor=np.array([v[1] for v in versions.values()], dtype=lane).reshape(-1, 1),
            masks=np.concatenate(masks) if masks else np.zeros((0, 1), dtype=lane),
            constrained=constrained,
            record_set=no_records,
            set_start=set_start,
            set_records=set_records,
            records=context._compiled_nothing(),
            exact_key=context._exact_keys(codes[context.exact_rows], True),
            has_version=has_version.astype(np.uint8),
            major=major,
            minor=minor,
            patch=patch,
            newest_rank=np.zeros(1, dtype=np.int64),
        )


def _literals(record: GroundedRecord) -> dict[str, list[Any]]:
    """The values a record's fields accept, which sources may later have."""
    out: dict[str, list[Any]] = {}
    for alternative in record.alternatives:
        for name, accept in zip(record.attrs, alternative):
            if isinstance(accept, AnyOf):
                out.setdefault(name, []).extend(accept.values)
            elif isinstance(accept, SubsetOf):
                out.setdefault(name, []).append(accept.items)
    return out


class _Context:
    """What sides are interned against: the shared vocabularies and the ops.

    The vocabularies are made from the distinct values of the sides given (and of
    ``literals``, records' values that sources may later have): each distinct value is
    looked at once, descriptors and classes only index tables of them.
    """

    def __init__(
        self,
        policy: Policy,
        attributes: list[str],
        sides: Sequence[SideValues],
        confirm: Callable[[str, str], bool] | None,
        literals: Sequence[dict[str, list[Any]]] = (),
        every_fixed_op: bool = False,
    ) -> None:
        self.policy = policy
        self.attributes = attributes
        self.confirm = confirm
        specs = [policy.attribute(a) for a in attributes]
        self.kinds: list[str] = [spec.type for spec in specs]
        vocabularies = []
        for spec in specs:
            extra = [v for record_literals in literals for v in record_literals.get(spec.name, ())]
            columns = [side.column(spec.name) for side in sides]
            if extra:
                columns.append(_Column(extra, spec.type))
            vocabularies.append(_Vocabulary(spec.type, columns))
        self.vocabularies = vocabularies
        opaque = dict.fromkeys([None, *(v for side in sides for v in side.opaque)])
        self.opaque_codes: dict[str | None, int] = {v: k for k, v in enumerate(opaque)}
        self.uses_source_records = policy.direction in ("source-offers", "both")
        self.uses_target_records = policy.direction in ("target-accepts", "both")

        # One op per rule that can fail, then the opaque check and migratability.
        self.version_slot = {i: k for k, i in enumerate(i for i, s in enumerate(specs) if s.type == "version")}
        rule_ops = [(i, _RULE_OPS[spec.rule]) for i, spec in enumerate(specs) if spec.rule in _RULE_OPS]
        fixed_ops = []  # (kind, row, reason, slot among the top two failure bits)
        opaque_row, migratable_row = len(attributes), len(attributes) + 1
        if policy.opaque != "ignore" and (every_fixed_op or len(self.opaque_codes) > 1 or policy.opaque == "required"):
            kind = OP_CONFIRM if confirm is not None else OP_REQUIRED if policy.opaque == "required" else OP_NE
            fixed_ops.append((kind, opaque_row, OPAQUE, 0))
        if every_fixed_op or not all(side.migratable.all() for side in sides):
            fixed_ops.append((OP_MIGRATABLE, migratable_row, NOT_MIGRATABLE, 1))

        largest = max([len(self.opaque_codes) + 1, 2, *(v.largest_code for v in vocabularies)])
        lane, attribute_bit_of, identity, failure_words = _choose_lanes(largest, [i for i, _ in rule_ops], len(fixed_ops))
        self.lane, self.identity, self.failure_words = lane, identity, failure_words
        bits = np.iinfo(lane).bits
        for v in vocabularies:
            v.use_lane(lane)
        self.word_start, self.words = {}, 0
        for i, v in enumerate(vocabularies):
            if v.kind == "set":
                self.word_start[i], self.words = self.words, self.words + v.words

        self.ops: list[tuple[int, int, int, int, int]] = []  # (kind, row, mask words, failure bit, reason bits)
        self.failure_bit_of: dict[str, int] = {}
        for i, kind in rule_ops:
            row = self.version_slot[i] if kind == OP_VERSION else self.word_start[i] if kind == OP_SUPERSET else i
            self.failure_bit_of[attributes[i]] = attribute_bit_of[i]
            self.ops.append((kind, row, vocabularies[i].words, attribute_bit_of[i], attribute_bit(i)))
        self.attribute_bits = sum(1 << op[3] for op in self.ops)
        for k, (kind, row, reasons, slot) in enumerate(fixed_ops):
            self.ops.append((kind, row, 0, bits - 2 + slot if identity else len(rule_ops) + k, reasons))
        ops = self.ops
        self.op_arrays: dict[str, np.ndarray] = dict(  # the same for every pair of sides; the kernel only reads them
            op_kind=np.array([op[0] for op in ops], dtype=np.int32),
            op_row=np.array([op[1] for op in ops], dtype=np.int32),
            op_words=np.array([op[2] for op in ops], dtype=np.int32),
            op_word=np.array([op[3] // bits for op in ops], dtype=np.int32),
            op_bit=np.array([1 << op[3] % bits for op in ops], dtype=lane),
            bit_reasons=_bit_reasons(ops, bits * failure_words),
        )

        self.exact_rows = np.array([i for i, s in enumerate(specs) if s.rule != "ignore"], dtype=np.intp)
        self.exact_seen = np.zeros((len(self.exact_rows), 0), dtype=np.int64)
        self._exact_lookup: dict[tuple[int, ...], int] | None = None
        self.score_version = attributes.index(policy.score_version) if policy.score_version else -1
        self.type_row = attributes.index(policy.score_type) if policy.score_type else -1
        self.row_of = {name: i for i, name in enumerate(attributes)}
        self._no_records: RecordTables | None = None
        self._no_sets = (np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int32))  # set_start, set_records

    def interned(self, source_side: Side, target_side: Side) -> Interned:
        policy = self.policy
        table, rows, columns = _opaque_table(self.opaque_codes, self.confirm, source_side.codes[-2], target_side.codes[-2])
        return Interned(
            policy=policy,
            attributes=self.attributes,
            lane=self.lane,
            sources=source_side,
            targets=target_side,
            op_kind=self.op_arrays["op_kind"],
            op_row=self.op_arrays["op_row"],
            op_words=self.op_arrays["op_words"],
            op_word=self.op_arrays["op_word"],
            op_bit=self.op_arrays["op_bit"],
            bit_reasons=self.op_arrays["bit_reasons"],
            identity_bits=self.identity,
            attribute_bits=self.attribute_bits,
            failure_words=self.failure_words,
            type_row=self.type_row,
            prefer_newest=policy.prefer == "newest",
            opaque_table=table,
            opaque_rows=rows,
            opaque_columns=columns,
        )

    def cmask(self, record: GroundedRecord) -> int:
        mask = 0
        for name in record.attrs:
            if name in self.failure_bit_of:
                mask |= 1 << self.failure_bit_of[name]
        return mask

    def failure_masks(self, masks: list[int]) -> np.ndarray:
        """lanes [len(masks), failure words]: each failure mask (over all words) cut into its words."""
        bits, words = np.iinfo(self.lane).bits, self.failure_words
        word = (1 << bits) - 1
        return np.array([[mask >> bits * w & word for w in range(words)] for mask in masks], dtype=self.lane).reshape(
            len(masks), words
        )

    def codes(self, values: SideValues, columns: list[_Column], at: np.ndarray | slice) -> np.ndarray:
        """int64 [n_attributes + 2, descriptors ``at``]: Side.codes' rows of some of a side's
        descriptors (``columns``: its column of each attribute). Each distinct value is coded
        once, into one table of every attribute's codes (the opaque strings' last), which the
        descriptors index."""
        opaque = self.opaque_codes
        tables = [*(v.codes_of(c) for v, c in zip(self.vocabularies, columns)), [opaque.get(v, len(opaque)) for v in values.opaque]]
        offsets = np.array([0, *accumulate(map(len, tables[:-1]))], dtype=np.int64)[:, None]
        ids = np.array([*(c.ids for c in columns), values.opaque_ids], dtype=np.int64).reshape(len(tables), -1)[:, at]
        codes = np.empty((len(tables) + 1, ids.shape[1]), dtype=np.int64)
        codes[:-1] = np.array([code for table in tables for code in table], dtype=np.int64)[ids + offsets]
        codes[-1] = values.migratable[at]
        return codes

    def _frozen_keys(self, values: SideValues, columns: list[_Column], codes: np.ndarray) -> np.ndarray:
        """What tells classes apart among frozen codes (in place of the codes, which serve
        everywhere else). Frozen codes merge values that the kernel tells apart: unseen ints
        and versions between the same neighbours (their majors, minors and distances differ),
        unseen sets (their items), unseen migration_version strings (their opaque check).
        Unseen strings may share a class: no target and no record has them."""
        keys = codes.copy()
        for i, (column, kind) in enumerate(zip(columns, self.kinds)):
            if kind != "string":  # a side numbers its versions by key: "1.0" is "1.0.0"
                keys[i] = column.ids
        keys[-2] = values.opaque_ids
        return keys

    def side(self, devices: DeviceSet, role: str, frozen: bool = False) -> Side:
        """The classes of one side, coded. Its classes are its own (:class:`SideValues`), except
        with ``frozen``: values the vocabularies have not seen (the sources against prepared
        targets) are coded without adding them, and classes grouped by what the kernel tells
        apart among them."""
        lane = self.lane
        records_count = self.uses_source_records if role == "source" else self.uses_target_records
        values = side_values(devices, self.policy, role, keep=not frozen)
        columns = [values.column(name) for name in self.attributes]
        if frozen:
            descriptor_codes = self.codes(values, columns, slice(None))
            classes = _classes(self._frozen_keys(values, columns, descriptor_codes), devices.descriptors, records_count)
            class_codes = descriptor_codes[:, classes.first]
            class_of = classes.of_descriptor[devices.descriptor_of] if len(devices) else np.zeros(0, dtype=np.int64)
        else:
            classes, class_of = values.classes, values.class_of
            class_codes = self.codes(values, columns, classes.first)
        first, records = classes.first, classes.records

        if records_count:
            cmasks = [self.cmask(r) for r in records]
            per_set = []
            for recs in classes.tuples:
                mask = 0
                for r in recs:
                    mask |= cmasks[r]
                per_set.append(mask)
            constrained = np.ascontiguousarray(self.failure_masks(per_set)[classes.record_tuple].T)
        else:
            constrained = np.full((self.failure_words, len(first)), np.iinfo(lane).max, dtype=lane)
        sets = sorted(classes.tuples)

        n = len(first)
        codes: np.ndarray = class_codes.astype(lane)
        versions = [  # in slot order
            self.vocabularies[i].version_table(columns[i], i == self.score_version)[:, columns[i].ids[first]]
            for i in self.version_slot
        ]
        vmajor: np.ndarray = np.array([v[0] for v in versions], dtype=lane) if versions else np.zeros((0, n), dtype=lane)
        vminor: np.ndarray = np.array([v[1] for v in versions], dtype=lane) if versions else np.zeros((0, n), dtype=lane)
        if self.score_version >= 0:
            has_version, major, minor, patch = versions[self.version_slot[self.score_version]][2:]
        else:
            has_version, major, minor, patch = np.zeros((4, n), dtype=np.int64)
        word_masks = [self.vocabularies[i].mask_table(columns[i])[:, columns[i].ids[first]] for i in self.word_start]
        masks = word_masks[0] if len(word_masks) == 1 else np.concatenate(word_masks) if word_masks else np.zeros((0, n), dtype=lane)
        return Side(
            class_of=class_of,
            codes=codes,
            vmajor=vmajor,
            vminor=vminor,
            masks=masks,
            constrained=constrained,
            record_set=classes.record_set,
            set_start=np.array([0, *accumulate(map(len, sets))], dtype=np.int64) if records else self._no_sets[0],
            set_records=np.array([r for recs in sets for r in recs], dtype=np.int32) if records else self._no_sets[1],
            records=self.compile(records) if records else self._compiled_nothing(),
            exact_key=self._exact_keys(class_codes[self.exact_rows], frozen),
            has_version=has_version.astype(np.uint8),
            major=major,
            minor=minor,
            patch=patch,
            newest_rank=self._newest_rank(codes) if role == "target" else np.zeros(n, dtype=np.int64),
        )

    def _exact_keys(self, rows: np.ndarray, frozen: bool) -> np.ndarray:
        """int64 per class: the number of its exact key (its codes of every non-ignore
        attribute, ``rows``) among those of the sides interned so far, in order of first
        appearance; ``frozen``: -1 for a key not seen before, which is not kept."""
        seen = self.exact_seen  # int64 [len(exact_rows), keys seen]: the keys by number
        if frozen:
            # A few classes (a request): look each up among the seen keys.
            if self._exact_lookup is None:
                self._exact_lookup = dict(zip(map(tuple, seen.T.tolist()), range(seen.shape[1])))
            get = self._exact_lookup.get
            return np.array([get(key, -1) for key in map(tuple, rows.T.tolist())], dtype=np.int64)
        # The seen keys, then these: groups in order of first appearance number the seen keys
        # as before (they are distinct and first) and the new ones after them.
        both = np.hstack([seen, rows])
        first, number = _group(both)
        self.exact_seen = both[:, first]
        self._exact_lookup = None
        return number[seen.shape[1] :]

    def _compiled_nothing(self) -> RecordTables:
        """The record tables of a side without records (every small request's), made once."""
        if self._no_records is None:
            self._no_records = self.compile([])
        return self._no_records

    def _newest_rank(self, codes: np.ndarray) -> np.ndarray:
        """prefer="newest": the rank of each target's version among the targets' versions."""
        rank = np.zeros(codes.shape[1], dtype=np.int64)
        if self.score_version >= 0 and codes.shape[1]:
            # Codes are ranks among both sides' versions: count the targets' codes below each.
            row = codes[self.score_version].astype(np.int64)
            present = row != 0
            held = np.zeros(int(row.max()) + 1, dtype=np.int64)
            held[row[present]] = 1
            rank[present] = (np.cumsum(held) - 1)[row[present]]
        return rank

    def compile(self, records: list[GroundedRecord]) -> RecordTables:
        tests: list[tuple[int, int, int, int]] = []  # (row or word, kind, start, length)
        code_pool: list[int] = []
        mask_pool: list[np.ndarray] = []
        mask_words = 0
        common_begin, common_end, alt_start, alt_begin, alt_end = [], [], [0], [], []

        def add_test(name: str, accept: Accept) -> None:
            nonlocal mask_words
            if isinstance(accept, AnyValue):
                return
            i = self.row_of[name]
            vocabulary = self.vocabularies[i]
            if isinstance(accept, SubsetOf):
                words = vocabulary.mask(accept.items, literal=True)
                tests.append((self.word_start[i], TEST_SUBSET, mask_words, len(words)))
                mask_pool.append(words)
                mask_words += len(words)
            else:
                assert isinstance(accept, AnyOf)
                # Values no descriptor has can never be the other side's value: leave them out.
                seen = (vocabulary.code.get(vocabulary.key(v)) for v in accept.values)
                codes = sorted({code for code in seen if code is not None})
                tests.append((i, TEST_IN_CODES, len(code_pool), len(codes)))
                code_pool.extend(codes)

        for record in records:
            columns = list(zip(*record.alternatives))
            common = [k for k, column in enumerate(columns) if len(set(column)) == 1]
            varying = [k for k in range(len(record.attrs)) if k not in common]
            common_begin.append(len(tests))
            for k in common:
                add_test(record.attrs[k], columns[k][0])
            common_end.append(len(tests))
            for alternative in record.alternatives:
                alt_begin.append(len(tests))
                for k in varying:
                    add_test(record.attrs[k], alternative[k])
                alt_end.append(len(tests))
            alt_start.append(len(alt_begin))

        table = np.array(tests, dtype=np.int64).reshape(-1, 4)
        return RecordTables(
            cmask=self.failure_masks([self.cmask(r) for r in records]),
            common_begin=np.array(common_begin, dtype=np.int64),
            common_end=np.array(common_end, dtype=np.int64),
            alt_start=np.array(alt_start, dtype=np.int64),
            alt_begin=np.array(alt_begin, dtype=np.int64),
            alt_end=np.array(alt_end, dtype=np.int64),
            test_row=table[:, 0].astype(np.int32),
            test_kind=table[:, 1].astype(np.int32),
            test_start=table[:, 2].copy(),
            test_len=table[:, 3].copy(),
            code_pool=np.array(code_pool, dtype=self.lane),
            mask_pool=np.concatenate(mask_pool) if mask_pool else np.zeros(0, dtype=self.lane),
        )


def _number(keys: Iterable[Hashable]) -> tuple[list[Any], list[int]]:
    """The distinct keys in order of first appearance, and each key's position among them.
    Hashing, not sorting: one attribute's values need not be comparable (absent is None),
    and each is looked at once."""
    index: dict[Hashable, int] = {}
    number = index.setdefault
    positions = [number(key, len(index)) for key in keys]
    return list(index), positions


def _numbered(items: Iterable[Any]) -> tuple[list[Any], np.ndarray]:
    """The distinct items in order of first appearance, and each item's number among them
    (int64): one pass, one hash lookup an item."""
    index: dict[Any, int] = {}
    number = index.setdefault
    numbers = [number(item, len(index)) for item in items]
    return list(index), np.array(numbers, dtype=np.int64)


class _Column:
    """One attribute's values on one side: ``values``, the distinct ones in order of first
    appearance (``None`` for absent; of equal versions the first), and ``ids``, each
    descriptor's among them. Versions also keep their ``canonical`` texts, one per key."""

    def __init__(
        self, values: list[Any], kind: str, ids: np.ndarray | None = None, canonical: list[str | None] | None = None
    ) -> None:
        self.values = values
        self.kind = kind
        self.ids = ids if ids is not None else np.zeros(0, dtype=np.int64)
        if kind == "version":
            self.canonical = canonical if canonical is not None else [None if v is None else v.canonical for v in values]

    @classmethod
    def of(cls, held: list[Mapping[str, Any]], written: list[Mapping[str, Any]], name: str, kind: str) -> "_Column":
        """The column of attribute ``name`` in the descriptors' values ``held``, ``written``
        being what each descriptor's SELF says (``Descriptor.raw_self``)."""
        index: dict[Any, int] = {}
        number = index.setdefault
        if kind != "version":
            ids = [number(values.get(name), len(index)) for values in held]
            return cls(list(index), kind, np.array(ids, dtype=np.int64))
        # A version's hash is Python code; what was written (a string, which is one version)
        # hashes at C speed. Number the written texts, then the few distinct ones by version:
        # equal versions (1.0, 1.0.0) share their canonical text.
        numbers = [number(raw.get(name), len(index)) for raw in written]
        texts, text_ids = list(index), np.array(numbers, dtype=np.int64)
        holder = dict(zip(numbers, range(len(held))))  # a descriptor that wrote each text
        versions = [held[holder[k]].get(name) for k in range(len(texts))]
        distinct, canonical_ids = _numbered(None if v is None else v.canonical for v in versions)
        first = dict(zip(reversed(canonical_ids.tolist()), reversed(versions)))  # the first of equal versions
        return cls([first[k] for k in range(len(distinct))], kind, canonical_ids[text_ids], distinct)

    @classmethod
    def absent(cls, n: int, kind: str) -> "_Column":
        """The column of an attribute no descriptor holds."""
        return cls([None], kind, np.zeros(n, dtype=np.int64))

    @cached_property
    def by_key(self) -> dict[str | None, Any]:
        """Versions: canonical text -> key, the present ones in order of key."""
        pairs = sorted((v.key, text) for v, text in zip(self.values, self.canonical) if v is not None)
        return {text: key for key, text in pairs}

    @cached_property
    def present(self) -> np.ndarray:
        """bool per value: not the absent one."""
        return np.array([v is not None for v in self.values], dtype=bool)

    @cached_property
    def parts(self) -> np.ndarray:
        """int64 [3, values]: each version's major, minor and patch (0 where absent)."""
        parts = [(*v.parts, 0, 0, 0)[:3] if v is not None else (0, 0, 0) for v in self.values]
        return np.array(parts, dtype=np.int64).reshape(len(self.values), 3).T


@dataclass
class _Classes:
    """Descriptors grouped where alike: classes numbered in order of first appearance, then
    those with the same records next to each other (the kernel then knows a tile's record
    state as a few runs, and visits the targets whose records it checks in order). A class's
    records are a set numbered in that order, () first."""

    first: np.ndarray  # int64 per class: its first descriptor
    of_descriptor: np.ndarray  # int64 per descriptor: its class
    record_set: np.ndarray  # int32 per class: its set of records (0: none)
    record_tuple: np.ndarray  # int64 per class: its records, as an index into ``tuples``
    tuples: list[tuple[int, ...]]  # each distinct tuple of records, as indices into ``records``; () first
    records: list[GroundedRecord]  # the distinct records


def _classes(keys: np.ndarray, descriptors: Sequence[Descriptor], records_count: bool) -> _Classes:
    """The classes of descriptors whose columns of ``keys`` (int64 [k, n]) are alike where
    the descriptors are alike; with ``records_count``, their records tell them apart too."""
    # Each descriptor's records as the number of its distinct tuple of records (0: none).
    by_records: dict[tuple[GroundedRecord, ...], int] = {(): 0}
    if records_count:
        with_records = _records_numbered(descriptors, by_records)
        keys = np.vstack([keys, with_records])
    record_ids: dict[GroundedRecord, int] = {}
    tuples = [tuple(record_ids.setdefault(r, len(record_ids)) for r in recs) for recs in by_records]

    first, of_descriptor = _group(keys)
    if not records_count:
        n = len(first)
        return _Classes(first, of_descriptor, np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int64), tuples, [])
    rank = np.empty(len(tuples), dtype=np.int64)
    rank[sorted(range(len(tuples)), key=tuples.__getitem__)] = np.arange(len(tuples))
    record_set = rank[with_records[first]]
    order = np.argsort(record_set, kind="stable")
    first, record_set = first[order], record_set[order].astype(np.int32)
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return _Classes(first, renumber[of_descriptor], record_set, with_records[first], tuples, list(record_ids))


def _records_numbered(descriptors: Sequence[Descriptor], by_records: dict[tuple[GroundedRecord, ...], int]) -> np.ndarray:
    """int64 per descriptor: the number of its tuple of records in ``by_records`` (which holds
    () as 0), added there in order of first appearance.

    Comparing grounded records runs Python code per value, and descriptors that differ
    elsewhere often hold equal records: records written alike (the same JSON text of what
    was written, which validation keeps to strings, integers, null and arrays of them, so
    that the text tells them apart) are the same records, and only the first descriptor of
    each text has its records compared.
    """
    number = by_records.setdefault
    of_text: dict[bytes, int] = {}
    numbers = []
    for d in descriptors:
        if not d.records:
            numbers.append(0)
            continue
        try:
            text = _json_text(d.raw_compatible)
        except (TypeError, ValueError, OverflowError):  # not JSON-shaped: compare the records
            numbers.append(number(d.records, len(by_records)))
            continue
        found = of_text.get(text)
        if found is None:
            found = of_text[text] = number(d.records, len(by_records))
        numbers.append(found)
    return np.array(numbers, dtype=np.int64)


class SideValues:
    """What interning finds in one device set on its own, whatever it is matched against.

    Per attribute a :class:`_Column` (made when first asked for); the same for
    ``migration_version`` (``opaque``, ``opaque_ids``); migratability per descriptor; and
    the classes: the descriptors grouped where all of these (and, when they count, the
    records) are alike, which is exactly where their codes against any vocabulary are
    alike (a vocabulary codes equal values alike, different ones differently).
    """

    def __init__(self, devices: DeviceSet, types: Mapping[str, str], records_count: bool) -> None:
        descriptors = devices.descriptors
        self.descriptors = descriptors
        self.descriptor_of = devices.descriptor_of
        self.names = devices.attribute_names()  # every attribute a descriptor may hold a value of
        self.named = set(self.names)
        self.types = types
        self.records_count = records_count
        self.columns: dict[str, _Column] = {}
        self.held = [d.values for d in descriptors]
        self.written = [d.raw_self for d in descriptors]
        self.opaque, self.opaque_ids = _numbered(d.migration_version for d in descriptors)
        self.migratable = np.fromiter((d.migratable for d in descriptors), dtype=bool, count=len(descriptors))

    def column(self, name: str) -> _Column:
        column = self.columns.get(name)
        if column is None:
            kind = self.types.get(name, "string")
            held = name in self.named
            column = _Column.of(self.held, self.written, name, kind) if held else _Column.absent(len(self.held), kind)
            self.columns[name] = column
        return column

    @cached_property
    def classes(self) -> _Classes:
        rows = [self.column(name).ids for name in self.names]
        keys = np.array([*rows, self.opaque_ids, self.migratable], dtype=np.int64).reshape(len(rows) + 2, len(self.descriptors))
        return _classes(keys, self.descriptors, self.records_count)

    @cached_property
    def class_of(self) -> np.ndarray:
        """int64 per device: its class."""
        if not len(self.descriptor_of):
            return np.zeros(0, dtype=np.int64)
        return self.classes.of_descriptor[self.descriptor_of]


def side_values(devices: DeviceSet, policy: Policy, role: str, keep: bool = True) -> SideValues:
    """The :class:`SideValues` of ``devices`` as ``role`` (``source`` or ``target``) under
    ``policy``, found at the first match and kept on the device set for every later one
    (``keep=False``: found again, as for a request's sources, which no later match reads).
    They depend on the policy only through the attributes' types and whether the side's
    records count (``direction``), which key them: another policy finds them again."""
    records_count = policy.direction in (("source-offers", "both") if role == "source" else ("target-accepts", "both"))
    types = {a.name: a.type for a in policy.attributes}
    if not keep:
        return SideValues(devices, types, records_count)
    key = ("side values", records_count, tuple(types.items()))
    found = devices.interning.get(key)
    if found is None:
        found = devices.interning[key] = SideValues(devices, types, records_count)
    return found


def _group(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The columns of ``rows`` (int64 [k, n], non-negative) grouped where alike: the first
    column of each group, groups numbered in order of first appearance, and each column's
    group.

    Each column is packed into one int64 key (mixed radix over the rows); where the next
    row would overflow the key, the key so far is renumbered first.
    """
    n = rows.shape[1]
    if n <= 1:
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    widths = (rows.max(axis=1) + 1).tolist()
    useful = [r for r, width in enumerate(widths) if width > 1]  # a row all alike tells nothing apart
    key, span, start = np.zeros(n, dtype=np.int64), 1, 0
    while start < len(useful):
        # As many rows as fit beside what the key holds: one product packs them.
        stop, room = start, span
        while stop < len(useful) and room * widths[useful[stop]] <= 1 << 62:
            room *= widths[useful[stop]]
            stop += 1
        if stop == start:  # full: number the keys so far
            distinct, key = np.unique(key, return_inverse=True)
            span = len(distinct)
            continue
        radix = [1] * (stop - start)
        for j in range(stop - start - 2, -1, -1):
            radix[j] = radix[j + 1] * widths[useful[start + j + 1]]
        key = key * (room // span) + np.array(radix, dtype=np.int64) @ rows[useful[start:stop]]
        span, start = room, stop
    if n <= SMALL_GROUP:
        keys = key.tolist()
        first_at = dict(zip(reversed(keys), range(n - 1, -1, -1)))  # the earliest position wins
        distinct_keys, groups = _number(keys)
        return np.array([first_at[k] for k in distinct_keys], dtype=np.int64), np.array(groups, dtype=np.int64)
    # Sorted by key (the fastest sort, unstable), each group is a run whose least position is
    # its first; runs are then numbered in the order of their first positions.
    order = np.argsort(key)
    ordered = key[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    first = np.minimum.reduceat(order, starts)
    by_first = np.argsort(first)
    number = np.empty_like(by_first)
    number[by_first] = np.arange(len(by_first))
    group = np.empty(n, dtype=np.int64)
    group[order] = np.repeat(number, np.diff(np.append(starts, n)))
    return first[by_first], group


def _choose_lanes(
    largest_code: int, rule_attributes: list[int], n_fixed: int
) -> tuple[type, dict[int, int], bool, int]:
    """The lane, the failure bit of each attribute, whether those bits are the reason bits
    themselves, and the failure words a pair's mask takes.

    Preferably the failure bit of attribute ``i`` is bit ``i``, its reason bit,
    with the opaque and migratable bits at the top two bits of the lane: turning
    failures into reasons is then a few shifts. That takes the narrowest lane
    that holds every code and those bits. Otherwise (an attribute past the shared
    reason bit) the narrowest lane that holds every code has the bits packed, as
    many words of it as they fill, and mapped to reasons through a table: every
    rule keeps a bit of its own, so any number of attributes is evaluated natively.
    """
    fitting = [t for t in LANE_TYPES if largest_code <= np.iinfo(t).max]
    for lane in fitting:
        if all(i < min(np.iinfo(lane).bits - 2, SHARED_ATTRIBUTE_BIT) for i in rule_attributes):
            return lane, {i: i for i in rule_attributes}, True, 1
    lane = fitting[0]
    words = -(-(len(rule_attributes) + n_fixed) // np.iinfo(lane).bits)
    return lane, {i: k for k, i in enumerate(rule_attributes)}, False, words


def _bit_reasons(ops: list[tuple[int, int, int, int, int]], bits: int) -> np.ndarray:
    reasons = np.zeros(bits, dtype=np.uint64)
    for op in ops:
        reasons[op[3]] |= np.uint64(op[4])
    return reasons


def _opaque_table(
    codes: dict[str | None, int],
    confirm: Callable[[str, str], bool] | None,
    source_codes: np.ndarray,
    target_codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The caller's confirmer, asked once per pair of a source's and a target's distinct
    migration_version strings (as the reference asks it at least once per pair of descriptors
    that hold them): uint8 [source strings + 1, target strings + 1], and the row and the column
    of each opaque code (0: absent, or not on that side). Empty without a confirmer."""
    if confirm is None:
        return np.zeros((0, 0), dtype=np.uint8), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    text = {code: value for value, code in codes.items() if value is not None}  # code 0, absent, is never asked
    places = []
    for side_codes in (source_codes, target_codes):
        present = np.unique(side_codes[side_codes != 0]).astype(np.int64)
        place = np.zeros(len(codes), dtype=np.int32)
        place[present] = np.arange(1, len(present) + 1)
        places.append((present.tolist(), place))
    (rows, row_of), (columns, column_of) = places
    table = np.zeros((len(rows) + 1, len(columns) + 1), dtype=np.uint8)
    for r, s in enumerate(rows, start=1):
        for c, t in enumerate(columns, start=1):
            table[r, c] = bool(confirm(text[s], text[t]))
    return table, row_of, column_of
