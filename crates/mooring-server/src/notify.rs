//! Outgoing notifications: a generic JSON or Slack-compatible webhook on sync failed,
//! sync recovered, drift detected and health degraded. Sent in the background with
//! retries; never blocks the control loop. `https://` targets use rustls with the
//! bundled web PKI roots.

use crate::config::{Notification, NotificationFormat};
use serde_json::json;
use std::time::Duration;

/// Something worth telling a person.
#[derive(Debug, Clone)]
pub struct Notice {
    /// One of [`crate::config::NOTIFICATION_EVENTS`].
    pub event: &'static str,
    pub app: String,
    pub message: String,
    pub revision: Option<String>,
}

/// Sends notices to the configured targets.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    targets: Vec<Notification>,
}

impl Notifier {
    pub fn new(targets: Vec<Notification>) -> Notifier {
        Notifier { targets }
    }

    /// Queues a notice to every target that wants it; returns at once.
    pub fn send(&self, notice: Notice) {
        for target in &self.targets {
            if !target.events.is_empty() && !target.events.iter().any(|e| e == notice.event) {
                continue;
            }
            let body = match target.format {
                NotificationFormat::Generic => json!({
                    "event": notice.event,
                    "app": notice.app,
                    "message": notice.message,
                    "revision": notice.revision,
                    "at": mooring_store::now_ms(),
                }),
                NotificationFormat::Slack => json!({
                    "text": format!("*{}* — {}: {}", notice.app, notice.event.replace('_', " "), notice.message),
                }),
            };
            let url = target.url.clone();
            tokio::task::spawn_blocking(move || deliver(&url, &body));
        }
    }
}

/// POSTs with up to 4 tries (1 s, 2 s, 4 s apart).
fn deliver(url: &str, body: &serde_json::Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=4 {
        match agent.post(url).send_json(body.clone()) {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "notification delivery failed");
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
}
