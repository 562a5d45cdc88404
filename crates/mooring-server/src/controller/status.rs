//! What the daemon says about an app: its status and conditions, events, outgoing
//! notifications and metrics.

use super::{Controller, StreamEvent};
use mooring_store::{now_ms, NewEvent};

impl Controller {
    pub(super) fn event(&self, app: &str, kind: &str, message: &str) {
        tracing::info!(app, kind, message, "event");
        let ev = NewEvent {
            app: Some(app.to_string()),
            kind: kind.to_string(),
            message: message.to_string(),
            at: now_ms(),
        };
        if let Ok(id) = self.store.add_event(&ev) {
            let _ = self.stream.send(StreamEvent {
                kind: "event",
                app: app.to_string(),
                data: serde_json::json!({"id": id, "kind": kind, "message": message}),
            });
        }
    }
}
