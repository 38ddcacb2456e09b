"""Who may call the citizens service's routes, as typed dependencies."""

from typing import Annotated

from fastapi import Depends

from services.platform.auth import Authenticator
from services.platform.scopes import Scope
from services.platform.tokens import Principal

CitizensRead = Annotated[Principal, Depends(Authenticator(required_scopes={Scope.citizens_read}))]
CitizensWrite = Annotated[Principal, Depends(Authenticator(required_scopes={Scope.citizens_write}))]
# The security service resolves a CPR number from a police upload to a citizen id.
CitizensLookup = Annotated[Principal, Depends(Authenticator(
    required_scopes={Scope.citizens_read, Scope.citizens_resolve}))]
# The activation service checks enrolment, birth date and readiness before a placement.
CitizensStatus = Annotated[Principal, Depends(Authenticator(
    required_scopes={Scope.citizens_read, Scope.citizens_status}))]
ReportsRead = Annotated[Principal, Depends(Authenticator(required_scopes={Scope.reports_read}))]
