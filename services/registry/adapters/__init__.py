"""Infrastructure of the registry service: tables, repositories, unit of work."""
