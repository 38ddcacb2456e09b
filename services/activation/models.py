"""Tables owned by the activation service (beyond the platform's audit and idempotency tables)."""
