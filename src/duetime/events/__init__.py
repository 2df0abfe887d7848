"""Events: CloudEvents written through a transactional outbox and published by a relay."""
