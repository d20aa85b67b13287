"""The interning as it was before it was vectorised (fastmatch/intern.py at commit 8e25557), kept
as the oracle of tests/test_intern_speed_equal.py: a plain loop per descriptor, tuple keys, one
Python value at a time. Only the imports changed (absolute; the numbers from fastmatch/codes.py, the
containers from fastmatch/intern.py), and the attribute order is computed here the old way too. Not used by the library.
Since then two layouts changed, and follow here: failure masks grew failure words (any number of
rules, each with a bit of its own: lanes and bits are chosen as fastmatch/intern.py now chooses them,
and masks are cut into words), and a confirmer's table holds a source's strings against a target's.
"""

from __future__ import annotations

import bisect
from typing import Callable

import numpy as np

from fastmatch.devices import Descriptor, DeviceSet
# The containers and the exception are the library's: what is compared is how they are filled.
from fastmatch.intern import Interned, RecordTables, Side
from fastmatch.policy import Policy
from fastmatch.reasons import NOT_MIGRATABLE, OPAQUE, SHARED_ATTRIBUTE_BIT, attribute_bit
from fastmatch.records import AnyOf, AnyValue, GroundedRecord, SubsetOf
from fastmatch.values import is_absent

from fastmatch.codes import (
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

_RULE_OPS = {"exact": OP_NE, "version": OP_VERSION, "superset": OP_SUPERSET, "ge": OP_GE, "le": OP_LE}
LANE_TYPES = (np.uint16, np.uint32, np.uint64)


def _attribute_names(devices: DeviceSet) -> list[str]:
    seen: dict[str, None] = {}
    for d in devices.descriptors:
        for name in d.attribute_names():
            seen.setdefault(name)
    return list(seen)


def fleet_attribute_order(policy: Policy, sources: DeviceSet, targets: DeviceSet) -> list[str]:
    return policy.attribute_order([*_attribute_names(sources), *_attribute_names(targets)])


class _Vocabulary:
    """Codes of one attribute's values, shared by both sides; 0 is the absent value.

    Int and version codes are ``2 * (rank + 1)``: a value the vocabulary has
    not seen (a source's, against prepared targets) gets the odd code between
    its neighbours, so comparisons stay exact. Other unseen values share one
    code that nothing seen has; an unseen set item sets a bit no target has.
    """

    def __init__(self, kind: str, values: list) -> None:
        self.kind = kind
        distinct = [v for v in dict.fromkeys(values) if v is not None and v != frozenset()]
        self.ordered = kind in ("int", "version")
        if self.ordered:
            distinct.sort()
        self.values = distinct
        step = 2 if self.ordered else 1
        self.code = {v: step * (i + 1) for i, v in enumerate(distinct)}
        self.code[None] = 0
        self.code[frozenset()] = 0
        self.unseen_code = step * len(distinct) + 1
        self.words = 0
        if kind == "set":
            self.bit = {item: i for i, item in enumerate(sorted({item for s in distinct for item in s}))}
        if kind == "version":
            majors = sorted({v.major for v in distinct})
            self.minors = sorted({v.minor for v in distinct})
            self.major_code = {m: k + 1 for k, m in enumerate(majors)}
            self.unseen_major = len(majors) + 1

    @property
    def largest_code(self) -> int:
        return self.unseen_code + 1

    def code_of(self, value) -> int:
        code = self.code.get(value)
        if code is not None:
            return code
        if self.ordered:
            return 2 * bisect.bisect_left(self.values, value) + 1
        return self.unseen_code

    def major_of(self, version) -> int:
        return self.major_code.get(version.major, self.unseen_major)

    def minor_of(self, version) -> int:
        index = bisect.bisect_left(self.minors, version.minor)
        seen = index < len(self.minors) and self.minors[index] == version.minor
        return 2 * (index + 1) if seen else 2 * index + 1

    def use_lane(self, lane: type) -> None:
        """Set masks are made of lane-wide words, so the superset loop reads one width."""
        if self.kind == "set":
            self.lane, self.lane_bits = lane, np.iinfo(lane).bits
            self.words = max(1, -(-(len(self.bit) + 1) // self.lane_bits))  # + the unseen-item bit

    def mask(self, items, *, literal: bool = False) -> np.ndarray:
        """The bits of a set; an item never seen sets the unseen-item bit, except in a
        record's literal (no source that has an unseen item is a subset of it)."""
        words = [0] * self.words
        for item in items:
            bit = self.bit.get(item, None if literal else len(self.bit))
            if bit is not None:
                words[bit // self.lane_bits] |= 1 << (bit % self.lane_bits)
        return np.array(words, dtype=self.lane)


def intern(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    confirm: Callable[[str, str], bool] | None = None,
) -> Interned:
    """Both sides of one match, against vocabularies of both sides' values."""
    attributes = fleet_attribute_order(policy, sources, targets)
    context = _Context(policy, attributes, [*sources.descriptors, *targets.descriptors], confirm)
    return context.interned(context.side(sources, "source"), context.side(targets, "target"))


class PreparedTargets:
    """A target fleet interned once, against which small sets of sources are interned quickly.

    Vocabularies hold the targets' values and their records' literals, so a
    source's values are coded without touching the targets again.
    """

    def __init__(self, targets: DeviceSet, policy: Policy) -> None:
        self.attributes = policy.attribute_order(_attribute_names(targets))
        literals = [_literals(record) for d in targets.descriptors for record in d.records]
        self.context = _Context(policy, self.attributes, targets.descriptors, None, literals, every_fixed_op=True)
        self.targets = self.context.side(targets, "target")
        self.kernel_cache: dict = {}

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
        interned = self.context.interned(self.context.side(sources, "source", frozen=True), self.targets)
        interned.kernel_cache = self.kernel_cache
        return interned


def _literals(record: GroundedRecord) -> dict[str, list]:
    """The values a record's fields accept, which sources may later have."""
    out: dict[str, list] = {}
    for alternative in record.alternatives:
        for name, accept in zip(record.attrs, alternative):
            if isinstance(accept, AnyOf):
                out.setdefault(name, []).extend(accept.values)
            elif isinstance(accept, SubsetOf):
                out.setdefault(name, []).append(accept.items)
    return out


class _Context:
    """What sides are interned against: the shared vocabularies and the ops."""

    def __init__(
        self,
        policy: Policy,
        attributes: list[str],
        descriptors: list[Descriptor],
        confirm: Callable[[str, str], bool] | None,
        literals: list[dict[str, list]] = (),
        every_fixed_op: bool = False,
    ) -> None:
        self.policy = policy
        self.attributes = attributes
        self.confirm = confirm
        specs = [policy.attribute(a) for a in attributes]
        vocabularies = []
        for spec in specs:
            values = [d.values.get(spec.name) for d in descriptors]
            for found in literals:
                values.extend(found.get(spec.name, ()))
            vocabularies.append(_Vocabulary(spec.type, values))
        self.vocabularies = vocabularies
        self.opaque_codes: dict[str | None, int] = {None: 0}
        for d in descriptors:
            self.opaque_codes.setdefault(d.migration_version, len(self.opaque_codes))
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
        if every_fixed_op or not all(d.migratable for d in descriptors):
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

        self.ops: list[tuple[int, int, int, int, int]] = []  # (kind, row, words, failure bit, reason bits)
        self.failure_bit_of: dict[str, int] = {}
        for i, kind in rule_ops:
            row = self.version_slot[i] if kind == OP_VERSION else self.word_start[i] if kind == OP_SUPERSET else i
            self.failure_bit_of[attributes[i]] = attribute_bit_of[i]
            self.ops.append((kind, row, vocabularies[i].words, attribute_bit_of[i], attribute_bit(i)))
        self.attribute_bits = sum(1 << op[3] for op in self.ops)
        for k, (kind, row, reasons, slot) in enumerate(fixed_ops):
            self.ops.append((kind, row, 0, bits - 2 + slot if identity else len(rule_ops) + k, reasons))

        self.exact_rows = [i for i, s in enumerate(specs) if s.rule != "ignore"]
        self.exact_keys: dict[tuple, int] = {}
        self.score_version = attributes.index(policy.score_version) if policy.score_version else -1
        self.row_of = {name: i for i, name in enumerate(attributes)}

    def interned(self, source_side: Side, target_side: Side) -> Interned:
        policy, lane, ops = self.policy, self.lane, self.ops
        table, rows, columns = _opaque_table(self.opaque_codes, self.confirm, source_side.codes[-2], target_side.codes[-2])
        return Interned(
            policy=policy,
            attributes=self.attributes,
            lane=lane,
            sources=source_side,
            targets=target_side,
            op_kind=np.array([op[0] for op in ops], dtype=np.int32),
            op_row=np.array([op[1] for op in ops], dtype=np.int32),
            op_words=np.array([op[2] for op in ops], dtype=np.int32),
            op_word=np.array([op[3] // np.iinfo(lane).bits for op in ops], dtype=np.int32),
            op_bit=np.array([1 << op[3] % np.iinfo(lane).bits for op in ops], dtype=lane),
            bit_reasons=_bit_reasons(ops, np.iinfo(lane).bits * self.failure_words),
            identity_bits=self.identity,
            attribute_bits=self.attribute_bits,
            failure_words=self.failure_words,
            type_row=self.attributes.index(policy.score_type) if policy.score_type else -1,
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

    def words_of(self, mask: int) -> list[int]:
        """A failure mask cut into its failure words, the lowest first."""
        bits = np.iinfo(self.lane).bits
        return [mask >> bits * w & (1 << bits) - 1 for w in range(self.failure_words)]

    def side(self, devices: DeviceSet, role: str, frozen: bool = False) -> Side:
        """The classes of one side. ``frozen``: code values the vocabularies have not seen
        (the sources against prepared targets) without adding them."""
        vocabularies, attributes = self.vocabularies, self.attributes
        records_count = self.uses_source_records if role == "source" else self.uses_target_records
        class_index: dict[tuple, int] = {}
        class_of_descriptor = np.empty(len(devices.descriptors), dtype=np.int64)
        members: list[tuple[tuple, Descriptor, tuple[int, ...]]] = []
        record_ids: dict[GroundedRecord, int] = {}
        for k, d in enumerate(devices.descriptors):
            row = tuple(v.code_of(d.values.get(name)) for v, name in zip(vocabularies, attributes))
            recs = tuple(record_ids.setdefault(r, len(record_ids)) for r in d.records) if records_count else ()
            key = (row, recs, d.migratable, d.migration_version)
            if frozen:
                # Unseen values share codes; what else the kernel reads of them must tell them apart.
                key += (self._unseen_detail(d),)
            if key not in class_index:
                class_index[key] = len(members)
                members.append((row, d, recs))
            class_of_descriptor[k] = class_index[key]
        # Classes with the same records next to each other: the kernel then knows a tile's
        # record state as a few runs, and visits the targets whose records it checks in order.
        order = sorted(range(len(members)), key=lambda c: members[c][2])
        members = [members[c] for c in order]
        renumber = np.empty(len(order), dtype=np.int64)
        renumber[order] = np.arange(len(order))
        class_of_descriptor = renumber[class_of_descriptor]

        n, lane = len(members), self.lane
        codes = np.zeros((len(attributes) + 2, n), dtype=lane)
        vmajor = np.zeros((len(self.version_slot), n), dtype=lane)
        vminor = np.zeros_like(vmajor)
        masks = np.zeros((self.words, n), dtype=lane)
        constrained = np.zeros((self.failure_words, n), dtype=lane)
        if not records_count:
            constrained[:] = np.iinfo(lane).max
        record_sets: dict[tuple[int, ...], int] = {(): 0}
        record_set = np.zeros(n, dtype=np.int32)
        exact_key = np.zeros(n, dtype=np.int64)
        has_version = np.zeros(n, dtype=np.uint8)
        major, minor, patch = (np.zeros(n, dtype=np.int64) for _ in range(3))
        records = list(record_ids)
        for c, (row, d, recs) in enumerate(members):
            codes[: len(row), c] = row
            codes[-2, c] = self.opaque_codes.get(d.migration_version, len(self.opaque_codes))
            codes[-1, c] = d.migratable
            for i, slot in self.version_slot.items():
                value = d.values.get(attributes[i])
                if value is not None:
                    vmajor[slot, c] = vocabularies[i].major_of(value)
                    vminor[slot, c] = vocabularies[i].minor_of(value)
            for i, start in self.word_start.items():
                masks[start : start + vocabularies[i].words, c] = vocabularies[i].mask(d.values.get(attributes[i], ()))
            key = tuple(row[i] for i in self.exact_rows)
            exact_key[c] = self.exact_keys.get(key, -1) if frozen else self.exact_keys.setdefault(key, len(self.exact_keys))
            record_set[c] = record_sets.setdefault(recs, len(record_sets))
            if records_count:
                bits = 0
                for r in recs:
                    bits |= self.cmask(records[r])
                constrained[:, c] = self.words_of(bits)
            if self.score_version >= 0:
                value = d.values.get(attributes[self.score_version])
                if value is not None:
                    has_version[c] = 1
                    major[c], minor[c], patch[c] = value.major, value.minor, value.patch
        return Side(
            class_of=class_of_descriptor[devices.descriptor_of] if len(devices) else np.zeros(0, dtype=np.int64),
            codes=codes,
            vmajor=vmajor,
            vminor=vminor,
            masks=masks,
            constrained=constrained,
            record_set=record_set,
            set_start=np.cumsum([0, *map(len, record_sets)], dtype=np.int64),
            set_records=np.array([r for recs in record_sets for r in recs], dtype=np.int32),
            records=self.compile(records),
            exact_key=exact_key,
            has_version=has_version,
            major=major,
            minor=minor,
            patch=patch,
            newest_rank=self._newest_rank(codes) if role == "target" else np.zeros(n, dtype=np.int64),
        )

    def _unseen_detail(self, d: Descriptor) -> tuple:
        """The values that codes alone do not tell apart once unseen ones share codes: ints and
        versions (the version rule reads majors and minors, the score their distances) and sets
        (their items). Unseen strings may share a class: no target and no record has them."""
        return tuple(
            d.values.get(name)
            for name, vocabulary in zip(self.attributes, self.vocabularies)
            if vocabulary.ordered or vocabulary.kind == "set"
        )

    def _newest_rank(self, codes: np.ndarray) -> np.ndarray:
        """prefer="newest": the rank of each target's version among the targets' versions."""
        rank = np.zeros(codes.shape[1], dtype=np.int64)
        if self.score_version >= 0:
            row = codes[self.score_version]
            present = row != 0
            rank[present] = np.searchsorted(np.unique(row[present]), row[present])
        return rank

    def compile(self, records: list[GroundedRecord]) -> RecordTables:
        tests: list[tuple[int, int, int, int]] = []  # (row or word, kind, start, length)
        code_pool: list[int] = []
        mask_pool: list[np.ndarray] = []
        mask_words = 0
        common_begin, common_end, alt_start, alt_begin, alt_end = [], [], [0], [], []

        def add_test(name: str, accept) -> None:
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
                codes = sorted({vocabulary.code[v] for v in accept.values if v in vocabulary.code})
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
            cmask=np.array([self.words_of(self.cmask(r)) for r in records], dtype=self.lane).reshape(len(records), self.failure_words),
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


def _choose_lanes(largest_code: int, rule_attributes: list[int], n_fixed: int) -> tuple[type, dict[int, int], bool, int]:
    """The lane, the failure bit of each attribute, whether those bits are the reason bits
    themselves, and how many failure words a mask takes.

    Preferably the failure bit of attribute ``i`` is bit ``i``, its reason bit,
    with the opaque and migratable bits at the top two bits of the narrowest lane
    that holds them and every code. Otherwise bits are packed into as many words
    of the narrowest lane that holds every code as they fill, and mapped through a table.
    """
    fitting = [t for t in LANE_TYPES if largest_code <= np.iinfo(t).max]
    for lane in fitting:
        if all(i < min(np.iinfo(lane).bits - 2, SHARED_ATTRIBUTE_BIT) for i in rule_attributes):
            return lane, {i: i for i in rule_attributes}, True, 1
    lane = fitting[0]
    words = -(-(len(rule_attributes) + n_fixed) // np.iinfo(lane).bits)
    return lane, {i: k for k, i in enumerate(rule_attributes)}, False, words


def _bit_reasons(ops, bits: int) -> np.ndarray:
    reasons = np.zeros(bits, dtype=np.uint64)
    for op in ops:
        reasons[op[3]] |= np.uint64(op[4])
    return reasons


def _opaque_table(
    codes: dict[str | None, int], confirm: Callable[[str, str], bool] | None, source_codes, target_codes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The caller's confirmer, asked once per pair of a source's and a target's distinct
    migration_version strings, and the row and column of each opaque code."""
    if confirm is None:
        return np.zeros((0, 0), dtype=np.uint8), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    text = {code: value for value, code in codes.items()}
    rows = sorted({int(c) for c in source_codes if c != 0})
    columns = sorted({int(c) for c in target_codes if c != 0})
    row_of = np.zeros(len(codes), dtype=np.int32)
    column_of = np.zeros(len(codes), dtype=np.int32)
    table = np.zeros((len(rows) + 1, len(columns) + 1), dtype=np.uint8)
    for c, t in enumerate(columns, start=1):
        column_of[t] = c
    for r, s in enumerate(rows, start=1):
        row_of[s] = r
        for c, t in enumerate(columns, start=1):
            table[r, c] = bool(confirm(text[s], text[t]))
    return table, row_of, column_of
