"""Who may call the providers service's routes, as typed dependencies."""

from services.platform.auth import requires
from services.platform.scopes import Scope

ProvidersRead = requires(Scope.providers_read)
ProvidersWrite = requires(Scope.providers_write)
# A contract's terms: readers of providers, and the activation service's narrow scope.
ContractsRead = requires(Scope.providers_read, Scope.contracts_terms)
