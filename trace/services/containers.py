"""Verify a case or pallet (``/00/{sscc}``): its verdict, what it holds, its path and what
anyone needs to check that path.

The path is the events naming the container, and, for each case or pallet it is packed in
now (at any depth), that container's events since the pack event that put it there: a
pallet's ship moved the case on it. Each event carries its leaf and inclusion proof against
the latest checkpoint, as on a unit's verify answer, so the same in-browser check proves it.

The contents are a summary, never a list of units: counts per GTIN and lot, and the cases
inside with their counts, each list bounded (``MAX_LOTS``, ``MAX_CONTAINERS``) and saying how
many lines it left out. A pallet of 10⁵ packs answers in a few queries and a few lines.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Sequence

from sqlmodel import Session

from medtrace import ledger
from medtrace.models import Container, Event, Verdict
from medtrace.schemas.containers import (
    ContainerPublic,
    ContainerVerifyPublic,
    ContentsPublic,
    InnerContainer,
    LotCount,
)
from medtrace.services.verify import provable_events, public_participant, worst_verdict
from medtrace.store import containers as container_store
from medtrace.store import participants as participant_store

#: The most GTIN-and-lot lines and inner cases an answer lists; the rest are counted.
MAX_LOTS = 100
MAX_CONTAINERS = 100


def container_path(sscc: str) -> str:
    """The GS1 Digital Link path of a case or pallet (AI 00)."""
    return f"/00/{sscc}"


def verify_container(
    *, session: Session, sscc: str, today: dt.date, base_url: str
) -> ContainerVerifyPublic:
    """The verdict, contents and provable path of the case or pallet ``sscc`` (already a
    valid SSCC). One never used in this log is ``unknown``. The verdict is the worst of the
    container's own quarantine and of what it holds (a recalled or expired lot inside)."""
    checkpoint = ledger.latest_checkpoint(session.connection())
    note = checkpoint.note if checkpoint else None
    container = container_store.get_container(session=session, sscc=sscc)
    if container is None:
        return ContainerVerifyPublic(
            verdict=Verdict.UNKNOWN,
            rule="verify.unknown_sscc",
            reasons=[f"SSCC {sscc} was never used in this log"],
            container=None,
            checkpoint=note,
            events=[],
            contents=None,
        )
    events = _path(session, container)
    participants = participant_store.get_participants(
        session=session, ids=[e.participant_id for e in events]
    )
    holder = participant_store.get_participant_by_gln(session=session, gln=container.holder_gln)
    contents, lots = _contents(session, sscc, base_url)
    reasons = _reasons(container, lots, today)
    return ContainerVerifyPublic(
        verdict=worst_verdict(reasons),
        reasons=[text for _, text in reasons],
        container=ContainerPublic(
            sscc=sscc,
            state=container.state,
            holder=public_participant(holder),
            parent_sscc=container.parent_sscc,
            digital_link=base_url + container_path(sscc),
        ),
        checkpoint=note,
        events=provable_events(session, events, participants, checkpoint),
        contents=contents,
    )


def _path(session: Session, container: Container) -> list[Event]:
    """The container's events, and those of each case or pallet around it since the pack
    event that put the one below into it, in ledger order."""
    found = {
        e.leaf_index: e
        for e in container_store.get_container_events(session=session, sscc=container.sscc)
    }
    child, outer = container.sscc, container.parent_sscc
    seen = {child}
    while outer is not None and outer not in seen:
        seen.add(outer)
        packed = _packed_at(session, outer, child)
        if packed is None:
            break
        found.update(
            (e.leaf_index, e)
            for e in container_store.get_container_events(session=session, sscc=outer, since=packed)
        )
        parent = container_store.get_container(session=session, sscc=outer)
        child, outer = outer, None if parent is None else parent.parent_sscc
    return [found[index] for index in sorted(found)]


def _packed_at(session: Session, outer: str, child: str) -> int | None:
    """The leaf of the latest pack event that put ``child`` into ``outer``, read from the
    leaves (the event rows do not keep children), newest first: the latest usually is it."""
    conn = session.connection()
    for event in container_store.get_pack_events(session=session, sscc=outer):
        leaf = ledger.leaves_at(conn, [event.leaf_index])[event.leaf_index]
        if {"sscc": child} in (json.loads(leaf)["event"].get("children") or []):
            return event.leaf_index
    return None


def _contents(session: Session, sscc: str, base_url: str) -> tuple[ContentsPublic, list[LotCount]]:
    """What ``sscc`` holds at any depth, counted per GTIN and lot and per inner case: the
    bounded summary, and every lot line (for the verdict)."""
    inner = container_store.get_inner_containers(session=session, sscc=sscc)
    counts = container_store.count_units(session=session, ssccs=[sscc, *(c for c, _ in inner)])
    by_lot: Counter[tuple[str, str]] = Counter()
    expiry: dict[tuple[str, str], dt.date] = {}
    in_case: Counter[str] = Counter()
    for count in counts:
        key = (count.gtin, count.lot)
        by_lot[key] += count.units
        expiry[key] = min(expiry.get(key, count.expiry), count.expiry)
        in_case[count.parent_sscc] += count.units
    parents = dict(inner)
    children: defaultdict[str, list[str]] = defaultdict(list)
    for case, parent in inner:
        children[parent].append(case)
    for case, _ in reversed(inner):  # children before their parents: add each to its parent
        in_case[parents[case]] += in_case[case]
    recalled = container_store.recalled_lots(session=session, gtins={g for g, _ in by_lot})
    lots = [
        LotCount(gtin=g, lot=lot, expiry=expiry[g, lot], units=n, recalled=(g, lot) in recalled)
        for (g, lot), n in sorted(by_lot.items())
    ]
    tree = _depth_first(sscc, children)
    summary = ContentsPublic(
        units=in_case[sscc],
        lots=lots[:MAX_LOTS],
        more_lots=max(0, len(lots) - MAX_LOTS),
        containers=[
            InnerContainer(
                sscc=case,
                parent_sscc=parents[case],
                depth=depth,
                units=in_case[case],
                digital_link=base_url + container_path(case),
            )
            for case, depth in tree[:MAX_CONTAINERS]
        ],
        more_containers=max(0, len(tree) - MAX_CONTAINERS),
    )
    return summary, lots


def _depth_first(root: str, children: dict[str, list[str]]) -> list[tuple[str, int]]:
    """The cases under ``root`` in reading order (each followed by what it holds), with
    their depth."""
    order: list[tuple[str, int]] = []
    stack = [(case, 1) for case in reversed(children.get(root, []))]
    while stack:
        case, depth = stack.pop()
        order.append((case, depth))
        stack.extend((inner, depth + 1) for inner in reversed(children.get(case, [])))
    return order


def _reasons(
    container: Container, lots: Sequence[LotCount], today: dt.date
) -> list[tuple[Verdict, str]]:
    """Why the container may not be trusted: its own quarantine, and every recalled or
    expired lot inside it (over all lots, not only those listed)."""
    reasons: list[tuple[Verdict, str]] = []
    if container.quarantined:
        reasons.append((Verdict.QUARANTINED, "quarantined by its holder's QA until released"))
    for line in lots:
        if line.recalled:
            reasons.append(
                (
                    Verdict.RECALLED,
                    f"holds {line.units} units of recalled lot {line.lot} of GTIN {line.gtin}",
                )
            )
        if line.expiry < today:
            reasons.append(
                (
                    Verdict.EXPIRED,
                    f"holds {line.units} units of lot {line.lot} of GTIN "
                    f"{line.gtin}, expired on {line.expiry}",
                )
            )
    return reasons
