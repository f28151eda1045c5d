"""What crosses a service boundary on the streams: editions, envelope, events, stream names.

Pure pydantic, importing nothing else of ours: what a provincial system's developer reads, and
what docs/asyncapi.yaml is generated from.
"""
