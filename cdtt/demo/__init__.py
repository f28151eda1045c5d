"""The 2022 replay and the load generators: made-up provincial systems writing over HTTP."""
