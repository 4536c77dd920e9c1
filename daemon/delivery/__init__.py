"""Alert delivery: routing, the outbox workers, and the service that runs them."""
