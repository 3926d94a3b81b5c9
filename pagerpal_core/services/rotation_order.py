"""A rotation's turn order, kept exactly as chosen: move one participant up or down.

Positions are unique per rotation (a schema rule), so a swap parks one row at a free
position first; the rotation's row lock keeps two people reordering at once from
interleaving their swaps.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pagerpal_core.errors import Invalid, NotFound
from pagerpal_core.models import Rotation, RotationParticipant
from pagerpal_core.services.schedules import lock_schedule

DIRECTIONS = ("up", "down")


def move_rotation_participant(session: Session, rotation: Rotation, participant_id: int,
                              direction: str) -> RotationParticipant:
    """Swap a participant with the one before ("up") or after ("down") it; at either end nothing moves.

    Unknown participant: NotFound; a direction other than "up"/"down": Invalid. Flushes.
    """
    if direction not in DIRECTIONS:
        raise Invalid("invalid move", fields={"direction": "must be up or down"})
    participant = (session.get(RotationParticipant, participant_id)
                   if isinstance(participant_id, int) else None)
    if participant is None or participant.rotation_id != rotation.id:
        raise NotFound(f"participant {participant_id} not found in rotation {rotation.id}")
    lock_schedule(session, rotation.schedule)
    session.refresh(rotation, ["participants"])
    order = list(rotation.participants)
    index = next(i for i, p in enumerate(order) if p.id == participant.id)
    other_index = index - 1 if direction == "up" else index + 1
    if not 0 <= other_index < len(order):
        return participant
    other = order[other_index]
    mine, theirs = participant.position, other.position
    # Park one row past the end so the unique (rotation, position) key never sees a duplicate.
    parked = (session.scalar(select(func.max(RotationParticipant.position))
                             .where(RotationParticipant.rotation_id == rotation.id)) or 0) + 1
    participant.position = parked
    session.flush()
    other.position = mine
    session.flush()
    participant.position = theirs
    session.flush()
    session.refresh(rotation, ["participants"])
    return participant
