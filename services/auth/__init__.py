"""API keys in front of every service's HTTP side: who may write where, and who may read."""
