"""Infrastructure of the aggregator service: tables, repositories, unit of work."""
