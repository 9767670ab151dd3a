"""How many comparisons a figure needs before it is given, and the reason when it is not.

Every figure carries the number of comparisons it rests on. A figure resting on too few is
null with a reason, never hidden: an FMR (FPIR) target needs at least 3/target different-
person comparisons (searches), so that about three false matches are expected; an FMR at a
threshold needs at least 3 observed false matches; an FNMR (FNIR) at least 30 same-person
comparisons (searches), the "rule of 30". Each function returns the reason, or None when
the figure can be given.
"""

from __future__ import annotations

import math

#: a false non-match rate needs at least this many same-person comparisons ("rule of 30").
MIN_GENUINE = 30
#: a false match rate needs about this many false matches: at a target, 3/target comparisons.
FALSE_MATCHES_NEEDED = 3


def fmr_target_reason(target: float, impostor: int, what: str = "different-person comparisons") -> str | None:
    """Why a rate ``target`` cannot be met on ``impostor`` comparisons (fewer than 3/target), or None."""
    needed = math.ceil(FALSE_MATCHES_NEEDED / target)
    if impostor < needed:
        return f"a rate of {target:.2g} needs at least {needed:,} {what} (for about {FALSE_MATCHES_NEEDED} false matches); has {impostor:,}"
    return None


def genuine_reason(genuine: int, what: str = "same-person comparisons") -> str | None:
    """Why a miss rate on ``genuine`` comparisons is not given (fewer than :data:`MIN_GENUINE`), or None."""
    if genuine < MIN_GENUINE:
        return f"rests on {genuine:,} {what}; at least {MIN_GENUINE} are needed"
    return None


def false_match_reason(false_matches: int, impostor: int, what: str = "different-person comparisons") -> str | None:
    """Why a false match rate from ``false_matches`` of ``impostor`` comparisons is not given (fewer than
    :data:`FALSE_MATCHES_NEEDED` false matches, or no comparison at all), or None."""
    if impostor == 0:
        return f"no {what}"
    if false_matches < FALSE_MATCHES_NEEDED:
        bound = f" (by the rule of three, below {FALSE_MATCHES_NEEDED / impostor:.2g} at 95% confidence)" if false_matches == 0 else ""
        return (
            f"{false_matches} of {impostor:,} {what} score this high: fewer than {FALSE_MATCHES_NEEDED} false matches, "
            f"too few to estimate the rate{bound}"
        )
    return None


def joined_reason(*named: tuple[str, str | None]) -> str:
    """The reasons given, each after its figure's name, in the order given: ``joined_reason(("FMR",
    r1), ("FNMR", r2))`` is ``"FMR: r1; FNMR: r2"`` without the ones that are None (or empty);
    ``""`` when there is none (callers that report JSON turn that into None)."""
    return "; ".join(f"{name}: {text}" for name, text in named if text)
