"""Infrastructure of the activity service: tables, repositories, unit of work."""
