"""Stream trimming that never removes an entry a reading group still needs.

Streams grow with every event; the producers' outboxes keep what a replay needs. An
entry may go once every group that reads its stream (shared.contracts.streams.READERS) has
acknowledged it. One Lua script reads the groups and trims in the same step (Redis runs
it atomically, so no delivery or ack slips in between):
- a reading group that does not exist yet means nothing is trimmed (it would start at 0);
- each group's floor is its oldest pending entry, else its last-delivered id (entries
  after it were never delivered);
- XTRIM MINID at the lowest floor removes only entries older than every floor.
Entries acknowledged but newer than another group's floor stay; the dead-letter streams
are never trimmed. `cdtt aggregator rebuild` reads streams from their start: after a
trim, replay the producers' outboxes before a rebuild (it refuses otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.exceptions import ResponseError

from shared.contracts.streams import READERS, StreamLayout
from shared.messaging.connection import RedisClient

_SAFE_TRIM = """
local function id_less(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  a_ms, a_seq, b_ms, b_seq = tonumber(a_ms), tonumber(a_seq), tonumber(b_ms), tonumber(b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'no_stream', '', 0}
end
local infos = {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  infos[info['name']] = info
end
local floor = nil
for _, name in ipairs(ARGV) do
  local info = infos[name]
  if info == nil then
    return {'missing_group', name, 0}
  end
  local point = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    point = redis.call('XPENDING', KEYS[1], name)[2]
  end
  if floor == nil or id_less(point, floor) then
    floor = point
  end
end
local removed = redis.call('XTRIM', KEYS[1], 'MINID', floor)
return {'trimmed', floor, removed}
"""


@dataclass(frozen=True)
class TrimResult:
    stream: str
    outcome: str  # trimmed | missing_group | no_stream
    detail: str  # the MINID used, or the missing group's name
    removed: int


async def trim_stream(redis: RedisClient, key: str, groups: Sequence[str]) -> TrimResult:
    """Remove the entries of the stream (partition) `key` that all of `groups` acknowledged.

    The script touches that one key, so on a cluster it runs on the key's node.
    """
    raw = await redis.eval(_SAFE_TRIM, 1, key, *groups)
    outcome, detail, removed = raw
    return TrimResult(
        stream=key,
        outcome=outcome.decode() if isinstance(outcome, bytes) else str(outcome),
        detail=detail.decode() if isinstance(detail, bytes) else str(detail),
        removed=int(removed),
    )


async def trim_streams(redis: RedisClient, layout: StreamLayout) -> list[TrimResult]:
    """`trim_stream` on every partition of every stream, with the groups that read it."""
    return [
        await trim_stream(redis, key, groups)
        for stream, groups in READERS.items()
        for key in layout.keys(stream)
    ]


async def delivery_floor(redis: RedisClient, key: str, group: str) -> str | None:
    """The oldest entry id `group` may still be handed on the stream (partition) `key`, as
    the trim above reads it.

    Its oldest pending entry (a reclaimer may deliver it again), else its last-delivered id
    (only newer entries are yet to come); None when the stream or the group is missing,
    since then nothing can be said of what is still to come.
    """
    try:
        groups = await redis.xinfo_groups(key)
    except ResponseError:
        return None  # no such stream
    info = next((g for g in groups if _text(g["name"]) == group), None)
    if info is None:
        return None
    if int(info["pending"]) > 0:
        summary = await redis.xpending(key, group)
        if summary["min"] is not None:
            return _text(summary["min"])
    return _text(info["last-delivered-id"])


def entry_time(entry_id: str) -> datetime:
    """When Redis added the entry: the milliseconds part of its id."""
    milliseconds = int(entry_id.partition("-")[0])
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
