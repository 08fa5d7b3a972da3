"""The shapes on the wire, one module per resource: what clients send, and the ``...Public``
views the API returns. Every name is re-exported here, so ``from medtrace.schemas import X``
reads the same whichever module defines X."""

from medtrace.schemas.alerts import (
    AlertPublic as AlertPublic,
)
from medtrace.schemas.alerts import (
    AlertsPublic as AlertsPublic,
)
from medtrace.schemas.alerts import (
    SubscriptionCreate as SubscriptionCreate,
)
from medtrace.schemas.alerts import (
    SubscriptionPublic as SubscriptionPublic,
)
from medtrace.schemas.capture import (
    AGGREGATION_TYPES as AGGREGATION_TYPES,
)
from medtrace.schemas.capture import (
    EARLIEST_EXPIRY as EARLIEST_EXPIRY,
)
from medtrace.schemas.capture import (
    EXPIRY_HORIZON_YEARS as EXPIRY_HORIZON_YEARS,
)
from medtrace.schemas.capture import (
    MAX_CHILDREN as MAX_CHILDREN,
)
from medtrace.schemas.capture import (
    TYPES_WITH_DESTINATION as TYPES_WITH_DESTINATION,
)
from medtrace.schemas.capture import (
    UNIT_ONLY_TYPES as UNIT_ONLY_TYPES,
)
from medtrace.schemas.capture import (
    CaptureResponse as CaptureResponse,
)
from medtrace.schemas.capture import (
    CaptureResult as CaptureResult,
)
from medtrace.schemas.capture import (
    EnvelopeIn as EnvelopeIn,
)
from medtrace.schemas.capture import (
    ObjectRef as ObjectRef,
)
from medtrace.schemas.capture import (
    Refusal as Refusal,
)
from medtrace.schemas.capture import (
    RefusalDetail as RefusalDetail,
)
from medtrace.schemas.capture import (
    SignedEvent as SignedEvent,
)
from medtrace.schemas.capture import (
    parse_sscc as parse_sscc,
)
from medtrace.schemas.cn import (
    CnCodePublic as CnCodePublic,
)
from medtrace.schemas.cn import (
    CnDrugCodeCreate as CnDrugCodeCreate,
)
from medtrace.schemas.cn import (
    CnDrugCodePublic as CnDrugCodePublic,
)
from medtrace.schemas.cn import (
    CnVerifyPublic as CnVerifyPublic,
)
from medtrace.schemas.keys import (
    KeyCreate as KeyCreate,
)
from medtrace.schemas.keys import (
    KeyPublic as KeyPublic,
)
from medtrace.schemas.keys import (
    KeyRevoke as KeyRevoke,
)
from medtrace.schemas.keys import (
    decode_new_public_key as decode_new_public_key,
)
from medtrace.schemas.keys import (
    decode_public_key as decode_public_key,
)
from medtrace.schemas.ledger import (
    CheckpointPublic as CheckpointPublic,
)
from medtrace.schemas.ledger import (
    LeafPublic as LeafPublic,
)
from medtrace.schemas.ledger import (
    PublicKeyPublic as PublicKeyPublic,
)
from medtrace.schemas.lots import (
    ColdChainLimitsIn as ColdChainLimitsIn,
)
from medtrace.schemas.lots import (
    DocumentKind as DocumentKind,
)
from medtrace.schemas.lots import (
    DocumentPublic as DocumentPublic,
)
from medtrace.schemas.lots import (
    DocumentRef as DocumentRef,
)
from medtrace.schemas.lots import (
    LotPublic as LotPublic,
)
from medtrace.schemas.lots import (
    LotRecordEvent as LotRecordEvent,
)
from medtrace.schemas.lots import (
    LotVersionPublic as LotVersionPublic,
)
from medtrace.schemas.lots import (
    ProductInfo as ProductInfo,
)
from medtrace.schemas.lots import (
    SignedLotEvent as SignedLotEvent,
)
from medtrace.schemas.participants import (
    ParticipantPublic as ParticipantPublic,
)
from medtrace.schemas.recalls import (
    ReachCounts as ReachCounts,
)
from medtrace.schemas.recalls import (
    ReachUnitPublic as ReachUnitPublic,
)
from medtrace.schemas.recalls import (
    RecallEvent as RecallEvent,
)
from medtrace.schemas.recalls import (
    RecallPublic as RecallPublic,
)
from medtrace.schemas.recalls import (
    RecallReachPublic as RecallReachPublic,
)
from medtrace.schemas.reorder import (
    ReorderPlanPublic as ReorderPlanPublic,
)
from medtrace.schemas.reorder import (
    ReorderPlansPublic as ReorderPlansPublic,
)
from medtrace.schemas.reorder import (
    StockBatch as StockBatch,
)
from medtrace.schemas.sensors import (
    BindingCreate as BindingCreate,
)
from medtrace.schemas.sensors import (
    BindingPublic as BindingPublic,
)
from medtrace.schemas.sensors import (
    GrantCreate as GrantCreate,
)
from medtrace.schemas.sensors import (
    GrantPublic as GrantPublic,
)
from medtrace.schemas.sensors import (
    ReadingMessageIn as ReadingMessageIn,
)
from medtrace.schemas.sensors import (
    ReadingPublic as ReadingPublic,
)
from medtrace.schemas.sensors import (
    ReadingResult as ReadingResult,
)
from medtrace.schemas.sensors import (
    ReadingsResponse as ReadingsResponse,
)
from medtrace.schemas.sensors import (
    ReadingStatus as ReadingStatus,
)
from medtrace.schemas.sensors import (
    RejectPublic as RejectPublic,
)
from medtrace.schemas.sensors import (
    SensorCreate as SensorCreate,
)
from medtrace.schemas.sensors import (
    SensorPublic as SensorPublic,
)
from medtrace.schemas.sensors import (
    TemperatureBand as TemperatureBand,
)
from medtrace.schemas.sensors import (
    TemperatureGap as TemperatureGap,
)
from medtrace.schemas.sensors import (
    TemperaturePoint as TemperaturePoint,
)
from medtrace.schemas.sensors import (
    TemperaturePublic as TemperaturePublic,
)
from medtrace.schemas.stations import (
    StationCreate as StationCreate,
)
from medtrace.schemas.stations import (
    StationPublic as StationPublic,
)
from medtrace.schemas.verify import (
    QuarantinePublic as QuarantinePublic,
)
from medtrace.schemas.verify import (
    UnitPublic as UnitPublic,
)
from medtrace.schemas.verify import (
    VerifyDocument as VerifyDocument,
)
from medtrace.schemas.verify import (
    VerifyEvent as VerifyEvent,
)
from medtrace.schemas.verify import (
    VerifyLotRecord as VerifyLotRecord,
)
from medtrace.schemas.verify import (
    VerifyPublic as VerifyPublic,
)
from medtrace.schemas.verify import (
    VerifyReading as VerifyReading,
)
