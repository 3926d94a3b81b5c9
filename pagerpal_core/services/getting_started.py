"""The getting-started checklist: the five steps from an empty install to a working page.

Each step ticks itself from the data (nothing is stored): people who can be paged, a
schedule, an escalation policy, an alert source, and a first alert. The web renders the
steps and links each to its page (`page` names a UI page; the web maps it to a URL).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from pagerpal_core.models import AlertSource, ContactMethod, EscalationPolicy, Incident, Schedule, User


@dataclass(frozen=True)
class ChecklistStep:
    """One step: a stable key, what to do, whether the data shows it done, and the page to do it on."""

    key: str
    label: str
    hint: str
    done: bool
    page: str


@dataclass(frozen=True)
class Checklist:
    """The steps in order; `complete` once every step is done (the dashboard then hides it)."""

    steps: list[ChecklistStep]

    @property
    def complete(self) -> bool:
        """True when every step is done."""
        return all(step.done for step in self.steps)

    @property
    def done_count(self) -> int:
        """How many steps are done."""
        return sum(step.done for step in self.steps)


def _any(session: Session, query) -> bool:
    return bool(session.scalar(select(exists(query))))


def getting_started(session: Session) -> Checklist:
    """The checklist as the data stands now (five cheap EXISTS queries)."""
    reachable = (select(ContactMethod.id).join(User, User.id == ContactMethod.user_id)
                 .where(User.active.is_(True), ContactMethod.enabled.is_(True)))
    steps = [
        ChecklistStep("people", "Add people", "someone with a phone number or email to page", _any(session, reachable),
                      "users"),
        ChecklistStep("schedule", "Create a schedule", "who is on call when", _any(session, select(Schedule.id)),
                      "schedules"),
        ChecklistStep("policy", "Create an escalation policy", "whom to page, and after how long the next level",
                      _any(session, select(EscalationPolicy.id)), "policies"),
        ChecklistStep("source", "Add an alert source", "the key your monitoring sends alerts with",
                      _any(session, select(AlertSource.id)), "alert_sources"),
        ChecklistStep("alert", "Send a test alert", "the source page's Send test alert button, or a real alert",
                      _any(session, select(Incident.id)), "alert_sources"),
    ]
    return Checklist(steps)
