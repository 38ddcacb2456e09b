"""Who may call the citizens service's routes, as typed dependencies."""

from services.platform.auth import requires
from services.platform.scopes import Scope

CitizensRead = requires(Scope.citizens_read)
CitizensWrite = requires(Scope.citizens_write)
# The security service resolves a CPR number from a police upload to a citizen id.
CitizensLookup = requires(Scope.citizens_read, Scope.citizens_resolve)
# The activation service checks enrolment, birth date and readiness before a placement.
CitizensStatus = requires(Scope.citizens_read, Scope.citizens_status)
ReportsRead = requires(Scope.reports_read)
