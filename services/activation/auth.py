"""Who may call the activation service's routes, as typed dependencies."""

from services.platform.auth import requires
from services.platform.scopes import Scope

ActivationRead = requires(Scope.activation_read)
ActivationWrite = requires(Scope.activation_write)
# The security service asks which placements a citizen has (for a provider's view).
PlacementsRead = requires(Scope.activation_read, Scope.placements_status)
AttendanceRead = requires(Scope.attendance_read)
AttendanceWrite = requires(Scope.attendance_write)
SanctionsRead = requires(Scope.sanctions_read)
SanctionsWrite = requires(Scope.sanctions_write)
SanctionsDecide = requires(Scope.sanctions_decide)
ReportsRead = requires(Scope.reports_read)
