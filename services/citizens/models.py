"""Tables owned by the citizens service (beyond the platform's audit and idempotency tables)."""
