"""The three cdtt services; each imports `shared`, never another service."""
