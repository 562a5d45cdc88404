//! What the controller is doing, for `/readyz`: a heartbeat its scheduler beats every
//! second, and the work running now (operations, fetches) with when each started. The
//! daemon is not ready when the heartbeat is stale (the controller's threads are
//! blocked) or a piece of work has run longer than `server.stuck_after` (a hung tool
//! process, a lock never released) — `/healthz` only says the process answers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the scheduler beats.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A heartbeat older than this means the controller's threads are blocked.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(30);

/// The controller's heartbeat and running work.
#[derive(Debug)]
pub struct Activity {
    stuck_after: Duration,
    /// The last beat; none before the scheduler starts (a reload waits for the old one).
    beat: Mutex<Option<Instant>>,
    running: Mutex<BTreeMap<u64, (String, Instant)>>,
    next: AtomicU64,
}

/// One piece of running work; it ends when dropped.
#[derive(Debug)]
pub struct Busy {
    activity: Arc<Activity>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity.running().remove(&self.id);
    }
}

impl Activity {
    /// Work running longer than `stuck_after` makes the controller stuck.
    pub fn new(stuck_after: Duration) -> Arc<Activity> {
        Arc::new(Activity {
            stuck_after,
            beat: Mutex::new(None),
            running: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (String, Instant)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The scheduler is alive at `now`.
    pub fn beat(&self, now: Instant) {
        *self.beat.lock().unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    /// `what` (e.g. "app blog: sync") starts at `now`; it ends when the guard drops.
    pub fn begin(self: &Arc<Self>, what: String, now: Instant) -> Busy {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.running().insert(id, (what, now));
        Busy {
            activity: self.clone(),
            id,
        }
    }

    /// Why the controller is stuck at `now`, if it is.
    pub fn stuck(&self, now: Instant) -> Option<String> {
        let beat = *self.beat.lock().unwrap_or_else(PoisonError::into_inner);
        let silent = beat.map_or(Duration::ZERO, |b| now.saturating_duration_since(b));
        if silent > HEARTBEAT_STALE {
            return Some(format!(
                "the controller's scheduler has not run for {}s: its threads are blocked; see the daemon's log and restart it",
                silent.as_secs()
            ));
        }
        let running = self.running();
        let (what, since) = running.values().min_by_key(|(_, since)| *since)?;
        let age = now.saturating_duration_since(*since);
        (age > self.stuck_after).then(|| {
            format!(
                "{what} has been running for {:.1}s, longer than server.stuck_after ({:?}): a tool process or lock may hang; see the daemon's log",
                age.as_secs_f64(),
                self.stuck_after
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_when_work_outlives_the_bound_or_the_heartbeat_stops() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let a = Activity::new(Duration::from_secs(60));
        assert_eq!(
            a.stuck(s(100)),
            None,
            "no heartbeat expected before the first"
        );
        a.beat(t0);
        assert_eq!(a.stuck(s(1)), None);
        let fetch = a.begin("source git://x: fetch".into(), s(0));
        let sync = a.begin("app blog: sync".into(), s(10));
        a.beat(s(60));
        assert_eq!(a.stuck(s(60)), None, "at the bound, not past it");
        a.beat(s(61));
        let why = a.stuck(s(61)).unwrap();
        assert!(why.starts_with("source git://x: fetch has been running for 61.0s, longer than server.stuck_after (60s)"), "{why}");
        drop(fetch);
        assert_eq!(a.stuck(s(61)), None, "the oldest left started at 10s");
        a.beat(s(71));
        assert!(a
            .stuck(s(71))
            .unwrap()
            .starts_with("app blog: sync has been running for 61.0s"));
        drop(sync);
        assert_eq!(a.stuck(s(71)), None);
        // No beat for more than 30 s.
        assert_eq!(a.stuck(s(101)), None);
        let why = a.stuck(s(102)).unwrap();
        assert!(why.contains("has not run for 31s"), "{why}");
    }
}
