"""Who may call the security service's routes, as typed dependencies.

The police write and read nothing back; the security coordinator reads whole
assessments; everyone who must follow measures reads measures only; the activation
service checks with its narrow `security:check` scope.
"""

from typing import Annotated

from fastapi import Depends

from services.platform.auth import Authenticator
from services.platform.scopes import Scope
from services.platform.tokens import Principal

ThreatsWrite = Annotated[Principal, Depends(Authenticator(required_scopes={Scope.threats_write}))]
ThreatsRead = Annotated[Principal, Depends(Authenticator(required_scopes={Scope.threats_read}))]
ConstraintsRead = Annotated[Principal, Depends(Authenticator(
    required_scopes={Scope.constraints_read, Scope.security_check}))]
SecurityCheck = Annotated[Principal, Depends(Authenticator(
    required_scopes={Scope.security_check}))]
ReferralsRead = Annotated[Principal, Depends(Authenticator(
    required_scopes={Scope.referrals_read}))]
RegistrationsAnnounce = Annotated[Principal, Depends(Authenticator(
    required_scopes={Scope.threats_link}))]
