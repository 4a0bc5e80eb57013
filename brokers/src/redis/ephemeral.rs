//! Instance-scoped (ephemeral) groups: Redis has no expiring consumer groups, so each one is
//! registered in `{stream}:ephemeral-groups` with a deadline its owner pushes forward while it
//! lives. A group whose deadline passed (its owner died without closing) is destroyed, with its
//! delayed-retry set, by the next member of any group of the stream that subscribes, and by
//! the live ephemeral members' heartbeats. Deadlines are on the server's clock.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::BusError;
use redis::Script;
use redis::aio::ConnectionManager;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::delivery::GroupEntry;
use super::redis_error;

/// Sets `ARGV[1]`'s deadline in the registry `KEYS[1]` to the server's time plus `ARGV[2]` ms.
const REGISTER: &str = r"
local now = redis.call('TIME')
local millis = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], millis + tonumber(ARGV[2]))
return 1
";

/// Destroys every group of stream `KEYS[2]` whose deadline in registry `KEYS[1]` passed, and
/// its delayed-retry set; returns how many.
const SWEEP: &str = r"
local now = redis.call('TIME')
local millis = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local entries = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #entries, 2 do
  local group, deadline = entries[i], tonumber(entries[i + 1])
  if deadline < millis then
    pcall(redis.call, 'XGROUP', 'DESTROY', KEYS[2], group)
    redis.call('DEL', KEYS[2] .. ':delayed:' .. group)
    redis.call('HDEL', KEYS[1], group)
    removed = removed + 1
  end
end
return removed
";

fn registry(stream: &str) -> String {
    format!("{stream}:ephemeral-groups")
}

/// Destroys the stream's ephemeral groups whose owners died.
pub(super) async fn sweep(conn: &mut ConnectionManager, stream: &str) -> Result<(), BusError> {
    let removed: u64 = Script::new(SWEEP)
        .key(registry(stream))
        .key(stream)
        .invoke_async(conn)
        .await
        .map_err(redis_error)?;
    if removed > 0 {
        tracing::info!(
            stream,
            removed,
            "redis: removed instance-scoped groups whose owners died"
        );
    }
    Ok(())
}

/// Registers `group` with a deadline of `expiry` from now, then keeps pushing it forward (and
/// sweeping the stream) every third of `expiry`, until the returned guard is dropped.
pub(super) async fn keep_registered(
    mut conn: ConnectionManager,
    group: Arc<GroupEntry>,
    expiry: Duration,
) -> Result<DropGuard, BusError> {
    register(&mut conn, &group, expiry).await?;
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(expiry / 3);
        beat.tick().await;
        loop {
            tokio::select! {
                () = stopped.cancelled() => return,
                _ = beat.tick() => {}
            }
            let renewed = match register(&mut conn, &group, expiry).await {
                Ok(()) => sweep(&mut conn, &group.stream).await,
                Err(error) => Err(error),
            };
            if let Err(error) = renewed {
                tracing::debug!(%error, group = %group.group, "redis: renewing an instance-scoped group failed; trying again later");
            }
        }
    });
    Ok(stop.drop_guard())
}

async fn register(
    conn: &mut ConnectionManager,
    group: &GroupEntry,
    expiry: Duration,
) -> Result<(), BusError> {
    Script::new(REGISTER)
        .key(registry(&group.stream))
        .arg(&group.group)
        .arg(expiry.as_millis() as u64)
        .invoke_async::<i64>(conn)
        .await
        .map(drop)
        .map_err(redis_error)
}

/// Destroys `group` (its owner closed it) and its delayed-retry set, and unregisters it.
pub(super) async fn destroy(
    conn: &mut ConnectionManager,
    group: &GroupEntry,
) -> Result<(), BusError> {
    redis::pipe()
        .cmd("XGROUP")
        .arg("DESTROY")
        .arg(&group.stream)
        .arg(&group.group)
        .ignore()
        .cmd("DEL")
        .arg(&group.delayed)
        .ignore()
        .cmd("HDEL")
        .arg(registry(&group.stream))
        .arg(&group.group)
        .ignore()
        .query_async::<()>(conn)
        .await
        .map_err(redis_error)
}
