"""Tables owned by the security service (beyond the platform's audit and idempotency tables)."""
