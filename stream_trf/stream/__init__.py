"""The worker: records in, enriched records and dead letters out, on a Kafka-compatible broker."""
