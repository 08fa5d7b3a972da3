"""Reorder plans from dispense history, per pharmacy and product.

The daily use of a product is the number of its units the pharmacy dispensed each day of the
last ``history_days`` full days (today excluded), zero days included: a product used rarely
must show its zeros, or its variation is underestimated. The batches on hand are the
pharmacy's units of that product it holds now, not quarantined, by lot, with their days to
expiry. ``medtrace.contracts.reorder.reorder_plan`` does the arithmetic.

Plans are computed on demand (``GET /api/v1/reorder-plans``) and nightly by the scheduler,
which keeps each day's plans (``reorder_plans``) as a history.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from medtrace.contracts.reorder import reorder_plan
from medtrace.custody import FINAL_STATES, MOVING_STATES
from medtrace.errors import InvalidInput, NotFound, SignatureRejected
from medtrace.models import Event, EventType, EventUnit, Participant, Role, Unit, as_utc
from medtrace.models.lots import Product
from medtrace.models.reorder import StoredReorderPlan
from medtrace.schemas.reorder import ReorderPlanPublic, ReorderPlansPublic, StockBatch
from medtrace.store import participants as participant_store


@dataclass(frozen=True)
class PlanningParameters:
    """How plans are computed: the supplier's lead time, the review period, the service level
    (chance of not running out) and the days of history."""

    lead_time_days: float
    review_period_days: float
    service_level: float
    history_days: int

    def with_overrides(
        self,
        *,
        lead_time_days: float | None,
        review_period_days: float | None,
        service_level: float | None,
        history_days: int | None,
    ) -> PlanningParameters:
        """These parameters with those given (not None) in their place."""
        return PlanningParameters(
            lead_time_days=self.lead_time_days if lead_time_days is None else lead_time_days,
            review_period_days=self.review_period_days
            if review_period_days is None
            else review_period_days,
            service_level=self.service_level if service_level is None else service_level,
            history_days=self.history_days if history_days is None else history_days,
        )

    def check(self) -> None:
        """``InvalidInput`` for values no plan can be computed with."""
        if not 0 < self.service_level < 1:
            raise InvalidInput(
                "service_level must be between 0 and 1 (exclusive)", rule="reorder.bad_parameters"
            )
        if self.lead_time_days < 0 or self.review_period_days < 0:
            raise InvalidInput(
                "lead time and review period cannot be negative", rule="reorder.bad_parameters"
            )
        if self.history_days < 2:
            raise InvalidInput(
                "at least two days of history are needed", rule="reorder.bad_parameters"
            )


def _daily_use(session: Session, gln: str, start: dt.date, days: int) -> dict[str, list[float]]:
    """Units dispensed at ``gln`` per product per day, from ``start``, ``days`` days long."""
    begin = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    end = begin + dt.timedelta(days=days)
    rows = session.exec(
        select(EventUnit.gtin, Event.event_time)
        .join(Event, col(Event.event_id) == col(EventUnit.event_id))
        .where(
            col(Event.type) == EventType.DISPENSE,
            col(Event.gln) == gln,
            col(Event.event_time) >= begin,
            col(Event.event_time) < end,
        )
    ).all()
    counts: Counter[tuple[str, int]] = Counter(
        (gtin, (as_utc(when).date() - start).days) for gtin, when in rows
    )
    usage: dict[str, list[float]] = defaultdict(lambda: [0.0] * days)
    for (gtin, day), count in counts.items():
        usage[gtin][day] = float(count)
    return dict(usage)


def _batches(session: Session, gln: str, today: dt.date) -> dict[str, list[StockBatch]]:
    """The pharmacy's usable stock (held, not quarantined) per product, by lot."""
    away = [*FINAL_STATES, *MOVING_STATES]
    rows = session.execute(
        sa_select(col(Unit.gtin), col(Unit.lot), col(Unit.expiry), func.count())
        .where(
            col(Unit.holder_gln) == gln,
            col(Unit.state).not_in(away),
            col(Unit.quarantined).is_(False),
        )
        .group_by(col(Unit.gtin), col(Unit.lot), col(Unit.expiry))
        .order_by(col(Unit.gtin), col(Unit.expiry), col(Unit.lot))
    ).all()
    batches: dict[str, list[StockBatch]] = defaultdict(list)
    for gtin, lot, expiry, count in rows:
        batches[gtin].append(
            StockBatch(lot=lot, expiry=expiry, quantity=count, days_to_expiry=(expiry - today).days)
        )
    return dict(batches)


def plan_reorders(
    *, session: Session, gln: str, today: dt.date, parameters: PlanningParameters
) -> list[ReorderPlanPublic]:
    """The plan of every product the pharmacy dispensed in the history or holds now."""
    parameters.check()
    start = today - dt.timedelta(days=parameters.history_days)
    usage = _daily_use(session, gln, start, parameters.history_days)
    stock = _batches(session, gln, today)
    names = {
        p.gtin: p.name_en
        for p in session.exec(select(Product).where(col(Product.gtin).in_([*usage, *stock])))
    }
    plans = []
    for gtin in sorted({*usage, *stock}):
        daily = usage.get(gtin, [0.0] * parameters.history_days)
        batches = stock.get(gtin, [])
        plan = reorder_plan(
            daily,
            parameters.lead_time_days,
            parameters.review_period_days,
            parameters.service_level,
            [(b.quantity, b.days_to_expiry) for b in batches],
        )
        on_hand = sum(b.quantity for b in batches)
        plans.append(
            ReorderPlanPublic(
                gln=gln,
                gtin=gtin,
                product=names.get(gtin),
                computed_on=today,
                history_days=parameters.history_days,
                lead_time_days=parameters.lead_time_days,
                review_period_days=parameters.review_period_days,
                service_level=parameters.service_level,
                dispensed=int(sum(daily)),
                mean_daily_use=plan.mean_daily_use,
                std_daily_use=plan.std_daily_use,
                safety_stock=plan.safety_stock,
                reorder_point=plan.reorder_point,
                order_up_to=plan.order_up_to,
                on_hand=on_hand,
                usable_on_hand=plan.usable_on_hand,
                at_risk_of_expiry=plan.at_risk_of_expiry,
                expiry_risk=plan.at_risk_of_expiry > 1e-9,
                reorder_now=plan.usable_on_hand <= plan.reorder_point,
                order_quantity=plan.order_quantity,
                batches=batches,
            )
        )
    return plans


def reorder_plans_for(
    *,
    session: Session,
    participant: Participant,
    gln: str | None,
    today: dt.date,
    parameters: PlanningParameters,
) -> ReorderPlansPublic:
    """A pharmacy's own plans; a regulator names the pharmacy with ``gln``."""
    if participant.role is Role.REGULATOR:
        if gln is None:
            raise InvalidInput("name the pharmacy: gln=", rule="reorder.gln_required")
        pharmacy = participant_store.get_participant_by_gln(session=session, gln=gln)
        if pharmacy is None or pharmacy.role is not Role.PHARMACY:
            raise NotFound(f"no pharmacy with GLN {gln}", rule="reorder.unknown_pharmacy")
    elif participant.role is not Role.PHARMACY:
        raise SignatureRejected(
            "reorder plans are a pharmacy's (or a regulator's) to read",
            rule="reorder.not_a_pharmacy",
        )
    elif gln is not None and gln != participant.gln:
        raise SignatureRejected(
            "a pharmacy reads only its own reorder plans", rule="reorder.not_yours"
        )
    target = gln or participant.gln
    data = plan_reorders(session=session, gln=target, today=today, parameters=parameters)
    return ReorderPlansPublic(data=data, count=len(data))


CSV_COLUMNS = (
    "gln",
    "gtin",
    "product",
    "computed_on",
    "dispensed",
    "mean_daily_use",
    "std_daily_use",
    "safety_stock",
    "reorder_point",
    "order_up_to",
    "on_hand",
    "usable_on_hand",
    "at_risk_of_expiry",
    "expiry_risk",
    "reorder_now",
    "order_quantity",
    "lead_time_days",
    "review_period_days",
    "service_level",
    "history_days",
)


def plans_csv(plans: ReorderPlansPublic) -> str:
    """The plans as CSV (RFC 4180), one row per product, quantities to two decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for plan in plans.data:
        values = plan.model_dump()
        writer.writerow(
            f"{values[c]:.2f}" if isinstance(values[c], float) else values[c] for c in CSV_COLUMNS
        )
    return out.getvalue()


def store_reorder_plans(*, session: Session, today: dt.date, parameters: PlanningParameters) -> int:
    """Compute every pharmacy's plans and keep them as today's (replacing an earlier run of
    the same day); return how many were stored."""
    with session.begin():
        pharmacies = session.exec(
            select(Participant.gln).where(col(Participant.role) == Role.PHARMACY)
        ).all()
        plans = [
            plan
            for gln in pharmacies
            for plan in plan_reorders(session=session, gln=gln, today=today, parameters=parameters)
        ]
        for old in session.exec(
            select(StoredReorderPlan).where(col(StoredReorderPlan.computed_on) == today)
        ):
            session.delete(old)
        session.flush()
        fields = set(StoredReorderPlan.model_fields) - {"id", "computed_at"}
        session.add_all(
            StoredReorderPlan(**{k: v for k, v in plan.model_dump().items() if k in fields})
            for plan in plans
        )
    return len(plans)
