"""Finding a core service that another part of PagerPal provides, by import."""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger("pagerpal.worker")


def optional_service(ctx, module: str, name: str):
    """`module.name`, or None (logged once) when that module is not installed.

    Only the module's own absence counts; an ImportError *inside* it is a real bug and is
    raised, so the step records it as its error.
    """
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
    except AttributeError:
        pass
    key = f"missing:{module}.{name}"
    if key not in ctx.notes:
        ctx.notes.add(key)
        log.info("service not available; step skipped", extra={"fields": {"service": f"{module}.{name}"}})
    return None
