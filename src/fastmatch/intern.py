"""Interning: descriptors become integer-coded, field-major arrays the kernel reads.

Every attribute gets one vocabulary shared by sources and targets, so equal
values have equal codes on both sides; code 0 is the absent value.
Int and version codes are ranks in sorted order, so ``ge``/``le`` compare
codes; sets are also bitmasks over the attribute's items (several 64-bit
words when an attribute has more than 64 items). Identical descriptors
collapse into classes; COMPATIBLE records are compiled into flat tables of
tests against those codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .devices import Descriptor, DeviceSet, fleet_attribute_order
from .errors import FastmatchError
from .policy import Policy
from .reasons import FIELD_CAP, attribute_bit
from .records import AnyOf, AnyValue, GroundedRecord, SubsetOf

# Operations of the per-attribute rule loop (dynamic and ignore never fail: no op).
OP_EXACT, OP_VERSION, OP_SUPERSET, OP_GE, OP_LE = range(5)
_OPS = {"exact": OP_EXACT, "version": OP_VERSION, "superset": OP_SUPERSET, "ge": OP_GE, "le": OP_LE}
# Tests of a compiled record field.
TEST_IN_CODES, TEST_SUBSET = 0, 1
# Bit 63 of the internal failure mask stands for every attribute no record constrains.
UNCONSTRAINED_BIT = 1 << 63
MAX_RECORD_ATTRIBUTES = 63
OPAQUE_MODES = {"if-present": 0, "required": 1, "ignore": 2}


class NativeUnsupported(FastmatchError):
    """The inputs exceed what the native kernel handles; the reference is used instead."""


class _Vocabulary:
    """Codes of one attribute's values, shared by both sides."""

    def __init__(self, kind: str, values: list) -> None:
        self.kind = kind
        distinct = [v for v in dict.fromkeys(values) if v is not None and v != frozenset()]
        if kind in ("int", "version"):
            distinct.sort()
        self.code = {v: i + 1 for i, v in enumerate(distinct)}
        self.values = distinct
        self.code[None] = 0
        self.code[frozenset()] = 0
        if kind == "set":
            items = sorted({item for s in distinct for item in s})
            self.bit = {item: i for i, item in enumerate(items)}
            self.words = max(1, (len(items) + 63) // 64)
        else:
            self.words = 0

    def mask(self, items) -> np.ndarray:
        words = np.zeros(self.words, dtype=np.uint64)
        for item in items:
            bit = self.bit.get(item)
            if bit is not None:
                words[bit >> 6] |= np.uint64(1) << np.uint64(bit & 63)
        return words


@dataclass
class RecordTables:
    """COMPATIBLE records held by one side, compiled to tests on the other side's codes.

    Record ``r`` matches when the tests ``common_begin[r]..common_end[r]`` pass
    (fields equal in every alternative) and, for some alternative ``a`` in
    ``alt_start[r]..alt_start[r+1]``, the tests ``alt_begin[a]..alt_end[a]`` pass.
    """

    cmask: np.ndarray  # uint64 [n_rec]: attributes the record constrains (internal bits)
    common_begin: np.ndarray
    common_end: np.ndarray
    alt_start: np.ndarray
    alt_begin: np.ndarray
    alt_end: np.ndarray
    test_attr: np.ndarray  # int32: row of the codes / first word of the masks
    test_kind: np.ndarray  # int32: TEST_IN_CODES or TEST_SUBSET
    test_start: np.ndarray  # int64: into code_pool (IN) or mask_pool (SUBSET)
    test_len: np.ndarray  # int64
    code_pool: np.ndarray  # int32, sorted per test
    mask_pool: np.ndarray  # uint64


@dataclass
class Side:
    """The classes of one side, field-major: ``codes[attribute, class]``."""

    class_of: np.ndarray  # int64 [n_devices]
    codes: np.ndarray  # int32 [n_attributes, n_classes]
    vmajor: np.ndarray  # int64 [n_version_attributes, n_classes]
    vminor: np.ndarray
    masks: np.ndarray  # uint64 [n_mask_words, n_classes]
    migratable: np.ndarray  # uint8
    opaque: np.ndarray  # int32: migration_version code, 0 when absent
    exact_key: np.ndarray  # int64: equal iff the descriptors agree on every non-ignore attribute
    cany: np.ndarray  # uint64: attributes any of the class's records constrains
    rec_start: np.ndarray  # int64 [n_classes + 1]
    rec_ids: np.ndarray  # int32: into this side's RecordTables
    records: RecordTables
    # score inputs
    has_version: np.ndarray  # uint8
    major: np.ndarray  # int64
    minor: np.ndarray
    patch: np.ndarray  # int64, capped at FIELD_CAP
    newest_rank: np.ndarray  # int64

    @property
    def n_classes(self) -> int:
        return self.codes.shape[1]


@dataclass
class Interned:
    policy: Policy
    attributes: list[str]
    sources: Side
    targets: Side
    # the rule loop
    op_kind: np.ndarray  # int32
    op_attr: np.ndarray  # int32: codes row
    op_aux: np.ndarray  # int32: version slot, or first mask word
    op_words: np.ndarray  # int32: mask words (sets)
    op_rbit: np.ndarray  # uint64: reason bit
    op_cbit: np.ndarray  # uint64: internal failure bit
    type_attr: int  # codes row of score_type, -1 if none
    opaque_table: np.ndarray | None  # uint8 [n_opaque, n_opaque] from a caller's confirmer


def intern(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    confirm: Callable[[str, str], bool] | None = None,
) -> Interned:
    attributes = fleet_attribute_order(policy, sources, targets)
    specs = [policy.attribute(a) for a in attributes]
    all_descriptors = [*sources.descriptors, *targets.descriptors]
    vocabularies = [
        _Vocabulary(spec.type, [d.values.get(spec.name) for d in all_descriptors]) for spec in specs
    ]
    version_slot = {i: k for k, i in enumerate(i for i, s in enumerate(specs) if s.type == "version")}
    word_start, words = {}, 0
    for i, vocabulary in enumerate(vocabularies):
        if vocabulary.kind == "set":
            word_start[i] = words
            words += vocabulary.words

    # Internal failure bits: one per attribute some record (of a side that counts) constrains.
    uses_target_records = policy.direction in ("target-accepts", "both")
    uses_source_records = policy.direction in ("source-offers", "both")
    constrained: dict[str, None] = {}
    for side, used in ((sources, uses_source_records), (targets, uses_target_records)):
        if used:
            for d in side.descriptors:
                for record in d.records:
                    constrained.update(dict.fromkeys(record.attrs))
    if len(constrained) > MAX_RECORD_ATTRIBUTES:
        raise NativeUnsupported(f"records constrain {len(constrained)} attributes, more than {MAX_RECORD_ATTRIBUTES}")
    cbit_of = {name: 1 << k for k, name in enumerate(constrained)}

    opaque_vocabulary: dict[str | None, int] = {None: 0}
    for d in all_descriptors:
        opaque_vocabulary.setdefault(d.migration_version, len(opaque_vocabulary))
    exact_keys: dict[tuple, int] = {}
    compiler = _RecordCompiler(attributes, vocabularies, word_start, cbit_of)
    context = _SideContext(
        attributes, specs, vocabularies, version_slot, word_start, words, opaque_vocabulary, exact_keys, policy
    )
    source_side = context.build(sources, compiler if uses_source_records else None)
    target_side = context.build(targets, compiler if uses_target_records else None)
    if policy.score_version:
        # prefer="newest" ranks T's version among the targets' versions; codes sort as versions do.
        row = target_side.codes[attributes.index(policy.score_version)]
        present = row != 0
        target_side.newest_rank[present] = np.searchsorted(np.unique(row[present]), row[present])

    ops = [(i, spec) for i, spec in enumerate(specs) if spec.rule in _OPS]
    type_attr = attributes.index(policy.score_type) if policy.score_type else -1
    return Interned(
        policy=policy,
        attributes=attributes,
        sources=source_side,
        targets=target_side,
        op_kind=np.array([_OPS[s.rule] for _, s in ops], dtype=np.int32),
        op_attr=np.array([i for i, _ in ops], dtype=np.int32),
        op_aux=np.array([version_slot.get(i, word_start.get(i, 0)) for i, _ in ops], dtype=np.int32),
        op_words=np.array([vocabularies[i].words for i, _ in ops], dtype=np.int32),
        op_rbit=np.array([attribute_bit(i) for i, _ in ops], dtype=np.uint64),
        op_cbit=np.array([cbit_of.get(s.name, UNCONSTRAINED_BIT) for _, s in ops], dtype=np.uint64),
        type_attr=type_attr,
        opaque_table=_opaque_table(opaque_vocabulary, confirm),
    )


class _SideContext:
    def __init__(self, attributes, specs, vocabularies, version_slot, word_start, words, opaque_vocabulary, exact_keys, policy):
        self.attributes = attributes
        self.specs = specs
        self.vocabularies = vocabularies
        self.version_slot = version_slot
        self.word_start = word_start
        self.words = words
        self.opaque_vocabulary = opaque_vocabulary
        self.exact_keys = exact_keys
        self.policy = policy
        self.exact_rows = [i for i, s in enumerate(specs) if s.rule != "ignore"]
        self.score_version = attributes.index(policy.score_version) if policy.score_version else -1

    def build(self, devices: DeviceSet, compiler: "_RecordCompiler | None") -> Side:
        n_attr = len(self.attributes)
        class_index: dict[tuple, int] = {}
        class_of_descriptor = np.empty(len(devices.descriptors), dtype=np.int64)
        members: list[tuple[tuple, Descriptor, tuple[int, ...]]] = []
        record_ids: dict[GroundedRecord, int] = {}
        for k, d in enumerate(devices.descriptors):
            codes = tuple(v.code[d.values.get(name)] for v, name in zip(self.vocabularies, self.attributes))
            recs = tuple(record_ids.setdefault(r, len(record_ids)) for r in d.records) if compiler else ()
            key = (codes, recs, d.migratable, d.migration_version)
            if key not in class_index:
                class_index[key] = len(class_index)
                members.append((codes, d, recs))
            class_of_descriptor[k] = class_index[key]

        n = len(members)
        codes = np.zeros((n_attr, n), dtype=np.int32)
        vmajor = np.zeros((len(self.version_slot), n), dtype=np.int64)
        vminor = np.zeros_like(vmajor)
        masks = np.zeros((self.words, n), dtype=np.uint64)
        migratable = np.zeros(n, dtype=np.uint8)
        opaque = np.zeros(n, dtype=np.int32)
        exact_key = np.zeros(n, dtype=np.int64)
        rec_start = np.zeros(n + 1, dtype=np.int64)
        rec_list: list[int] = []
        cany = np.zeros(n, dtype=np.uint64)
        has_version = np.zeros(n, dtype=np.uint8)
        major = np.zeros(n, dtype=np.int64)
        minor = np.zeros(n, dtype=np.int64)
        patch = np.zeros(n, dtype=np.int64)
        records = list(record_ids)
        for c, (row, d, recs) in enumerate(members):
            codes[:, c] = row
            for i, slot in self.version_slot.items():
                value = d.values.get(self.attributes[i])
                if value is not None:
                    vmajor[slot, c], vminor[slot, c] = value.major, value.minor
            for i, start in self.word_start.items():
                vocabulary = self.vocabularies[i]
                masks[start : start + vocabulary.words, c] = vocabulary.mask(d.values.get(self.attributes[i], ()))
            migratable[c] = d.migratable
            opaque[c] = self.opaque_vocabulary[d.migration_version]
            exact_key[c] = self.exact_keys.setdefault(tuple(row[i] for i in self.exact_rows), len(self.exact_keys))
            rec_list.extend(recs)
            rec_start[c + 1] = len(rec_list)
            mask = 0
            for r in recs:
                mask |= compiler.cmask(records[r])
            cany[c] = mask
            if self.score_version >= 0:
                value = d.values.get(self.attributes[self.score_version])
                if value is not None:
                    has_version[c] = 1
                    major[c], minor[c] = value.major, value.minor
                    patch[c] = min(value.patch, FIELD_CAP)
        return Side(
            class_of=class_of_descriptor[devices.descriptor_of] if len(devices) else np.zeros(0, dtype=np.int64),
            codes=codes,
            vmajor=vmajor,
            vminor=vminor,
            masks=masks,
            migratable=migratable,
            opaque=opaque,
            exact_key=exact_key,
            cany=cany,
            rec_start=rec_start,
            rec_ids=np.array(rec_list, dtype=np.int32),
            records=(compiler or _RecordCompiler.empty()).compile(records),
            has_version=has_version,
            major=major,
            minor=minor,
            patch=patch,
            newest_rank=np.zeros(n, dtype=np.int64),
        )


class _RecordCompiler:
    """Turns grounded records into :class:`RecordTables` over the shared vocabularies."""

    def __init__(self, attributes, vocabularies, word_start, cbit_of) -> None:
        self.row = {name: i for i, name in enumerate(attributes)}
        self.vocabularies = vocabularies
        self.word_start = word_start
        self.cbit_of = cbit_of

    @classmethod
    def empty(cls) -> "_RecordCompiler":
        return cls([], [], {}, {})

    def cmask(self, record: GroundedRecord) -> int:
        mask = 0
        for name in record.attrs:
            mask |= self.cbit_of[name]
        return mask

    def compile(self, records: list[GroundedRecord]) -> RecordTables:
        tests: list[tuple[int, int, int, int]] = []  # (attr row or word, kind, start, length)
        code_pool: list[int] = []
        mask_pool: list[np.ndarray] = []
        mask_words = 0
        common_begin, common_end, alt_start, alt_begin, alt_end = [], [], [0], [], []
        cmask = []

        def add_test(name: str, accept) -> None:
            nonlocal mask_words
            if isinstance(accept, AnyValue):
                return
            i = self.row[name]
            vocabulary = self.vocabularies[i]
            if isinstance(accept, SubsetOf):
                words = vocabulary.mask(accept.items)
                tests.append((self.word_start[i], TEST_SUBSET, mask_words, len(words)))
                mask_pool.append(words)
                mask_words += len(words)
            else:
                assert isinstance(accept, AnyOf)
                # Values no descriptor has can never be a source's value: leave them out.
                codes = sorted({vocabulary.code[v] for v in accept.values if v in vocabulary.code})
                tests.append((i, TEST_IN_CODES, len(code_pool), len(codes)))
                code_pool.extend(codes)

        for record in records:
            cmask.append(self.cmask(record))
            columns = list(zip(*record.alternatives)) if record.alternatives else [()] * len(record.attrs)
            common = [k for k, column in enumerate(columns) if record.alternatives and len(set(column)) == 1]
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
            cmask=np.array(cmask, dtype=np.uint64),
            common_begin=np.array(common_begin, dtype=np.int64),
            common_end=np.array(common_end, dtype=np.int64),
            alt_start=np.array(alt_start, dtype=np.int64),
            alt_begin=np.array(alt_begin, dtype=np.int64),
            alt_end=np.array(alt_end, dtype=np.int64),
            test_attr=table[:, 0].astype(np.int32),
            test_kind=table[:, 1].astype(np.int32),
            test_start=table[:, 2].copy(),
            test_len=table[:, 3].copy(),
            code_pool=np.array(code_pool, dtype=np.int32),
            mask_pool=np.concatenate(mask_pool) if mask_pool else np.zeros(0, dtype=np.uint64),
        )


MAX_OPAQUE_TABLE = 1 << 26


def _opaque_table(vocabulary: dict[str | None, int], confirm: Callable[[str, str], bool] | None) -> np.ndarray | None:
    """The caller's confirmer, asked once per pair of distinct migration_version strings."""
    if confirm is None:
        return None
    n = len(vocabulary)
    if n * n > MAX_OPAQUE_TABLE:
        raise NativeUnsupported(f"{n - 1} distinct migration_version strings are too many for a confirmer table")
    table = np.zeros((n, n), dtype=np.uint8)
    versions = [v for v in vocabulary if v is not None]
    for s in versions:
        for t in versions:
            table[vocabulary[s], vocabulary[t]] = bool(confirm(s, t))
    return table
