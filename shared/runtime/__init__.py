"""What every process runs on: settings, database, logging, metrics, migrations, crash points."""
