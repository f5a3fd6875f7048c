"""Honest admission: from the root config, what the network's proxies require of a worker, and
whether this computer has it — decided before dialing, said in plain words.

A test-mode root (``is_test = 1``) admits any worker in test mode. A production root admits only
TDX-attested workers with an image and a model hash it lists (docs/protocol.md §2.4, §7); without
TDX this app says what is missing instead of pretending to earn.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import UserFacingError
from app.engine.tee import TeeReadiness
from app.network.root_config import RootConfig

_ELSEWHERE = (
    "Earn on the local test network (--network devnet) or a test-mode proxy (--network custom) "
    "instead."
)


class NotAdmittedError(UserFacingError):
    """The network's proxies will not take work from this computer."""


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    summary: str
    details: tuple[str, ...] = ()

    def raise_if_refused(self) -> None:
        if not self.admitted:
            raise NotAdmittedError(self.summary, hint=" ".join(self.details))


def admission(root: RootConfig, tee: TeeReadiness, model: str = "") -> Admission:
    """Whether this computer can serve ``root``'s proxies, and why not."""
    if root.is_test:
        return Admission(True, "This network runs in test mode: any worker may join.")
    details = list(tee.lacking())
    if not root.worker_hashes:
        details.append("The root contract lists no allowed worker image yet.")
    if model and not root.accepts_model(model):
        details.append(f"The root contract does not list the model {model}.")
    elif not root.model_hashes:
        details.append("The root contract lists no allowed model.")
    if tee.ready and not details:
        return Admission(
            True, "This computer is a TDX worker; the proxies check its attested image."
        )
    return Admission(
        False,
        "This network's proxies take work only from attested confidential (Intel TDX) "
        "workers, and this computer is not one, so it cannot earn here.",
        (*details, _ELSEWHERE),
    )
