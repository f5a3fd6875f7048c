"""``ViewModels``: every view-model of the main window, built once from the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.bootstrap import Services
from app.core.money import Nanoton
from app.ui.viewmodels.app_status import AppStatusViewModel
from app.ui.viewmodels.earning import EarningViewModel
from app.ui.viewmodels.payouts import PayoutViewModel
from app.ui.viewmodels.telemetry import TelemetryViewModel
from app.ui.viewmodels.wallet import WalletViewModel

DEVNET_FAUCET_COMMENT = "devnet faucet"


@dataclass(frozen=True, slots=True)
class ViewModels:
    """The main window's narrow views of the services; :meth:`aclose` releases them all."""

    status: AppStatusViewModel
    telemetry: TelemetryViewModel
    earning: EarningViewModel
    wallet: WalletViewModel
    payouts: PayoutViewModel

    @classmethod
    def build(cls, services: Services) -> ViewModels:
        chain = services.faucet_chain

        async def faucet(address: str, amount: Nanoton) -> object:
            if chain is None:  # pragma: no cover - only offered on devnet
                raise RuntimeError("no faucet on this network")
            return await chain.mint(address, amount, comment=DEVNET_FAUCET_COMMENT)

        return cls(
            status=AppStatusViewModel(services),
            telemetry=TelemetryViewModel(
                services.telemetry, services.guard, services.energy, today=date.today
            ),
            earning=EarningViewModel(services.earning, services.jobs, services.local_network),
            wallet=WalletViewModel(
                services.wallet,
                keyring=services.keyring,
                settings=services.settings.current,
                faucet=faucet if chain is not None else None,
            ),
            payouts=PayoutViewModel(services),
        )

    async def aclose(self) -> None:
        self.payouts.close()
        await self.wallet.aclose()
        self.earning.close()
        self.telemetry.close()
        self.status.close()
