"""Who may call the providers service's routes, as typed dependencies."""

from typing import Annotated

from fastapi import Depends

from services.platform.auth import Authenticator
from services.platform.scopes import Scope
from services.platform.tokens import Principal

ProvidersRead = Annotated[Principal, Depends(Authenticator(required_scopes={Scope.providers_read}))]
ProvidersWrite = Annotated[
    Principal, Depends(Authenticator(required_scopes={Scope.providers_write}))
]
# A contract's terms: readers of providers, and the activation service's narrow scope.
ContractsRead = Annotated[
    Principal,
    Depends(Authenticator(required_scopes={Scope.providers_read, Scope.contracts_terms})),
]
