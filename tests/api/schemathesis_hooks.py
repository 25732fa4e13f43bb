"""schemathesis hooks for the run with training on (SCHEMATHESIS_HOOKS=schemathesis_hooks):
every job it starts is a small one, so a run takes seconds, not an epoch of MNIST each.

Each field is only ever moved from a valid value to another valid one, so a valid body stays
valid and an invalid one stays invalid: what the checks judge is unchanged.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SMALL_JOB = {"train_size": (1000, 60000, 1000), "epochs": (1, 5, 1), "batch_size": (16, 512, 512)}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.method.upper() != "POST" or case.path != "/api/v1/trainings":
        return
    if not isinstance(case.body, dict):
        return
    for field, (low, high, small) in SMALL_JOB.items():
        value = case.body.get(field)
        if type(value) is int and low <= value <= high:
            case.body[field] = small
    if case.body.get("architecture") in ("default", "lenet5", "mlp"):
        case.body["architecture"] = "tiny"
