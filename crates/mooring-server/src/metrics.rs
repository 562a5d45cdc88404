//! Prometheus metrics, kept in memory and written in the text exposition format.
//! Small on purpose: counters, gauges and histograms with labels, nothing more.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), u64>,
    /// App info gauge: app → labels (one series per app, replaced on change).
    info: BTreeMap<String, Labels>,
    /// Other gauges, by name and labels.
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The daemon's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

const HELP: &[(&str, &str, &str)] = &[
    (
        "mooring_app_info",
        "gauge",
        "Apps with their sync status, health and deployed revision (value 1).",
    ),
    (
        "mooring_host_up",
        "gauge",
        "Docker hosts by whether their Engine answers and is the one deployed to (1) or not (0).",
    ),
    (
        "mooring_reconcile_duration_seconds",
        "histogram",
        "Time to reconcile an app (render, observe, plan, apply).",
    ),
    (
        "mooring_sync_total",
        "counter",
        "Operations by app and result (succeeded, failed, no_op).",
    ),
    (
        "mooring_source_fetch_duration_seconds",
        "histogram",
        "Time to fetch a source.",
    ),
    (
        "mooring_source_fetch_total",
        "counter",
        "Source fetches by source and result.",
    ),
    (
        "mooring_webhook_requests_total",
        "counter",
        "Webhook requests by provider and result.",
    ),
    (
        "mooring_drift_events_total",
        "counter",
        "Drift detected on the host, by app.",
    ),
    (
        "mooring_volume_last_backup_timestamp_seconds",
        "gauge",
        "When the newest backup of each volume of an app was taken (Unix seconds): its age is time() minus this.",
    ),
    (
        "mooring_volume_last_backup_bytes",
        "gauge",
        "The content bytes of the newest backup of each volume of an app.",
    ),
    (
        "mooring_backup_copies_total",
        "counter",
        "Backups copied to a backup target and read back there (result: copied), or copy passes that failed (result: failed).",
    ),
    (
        "mooring_backup_copy_duration_seconds",
        "histogram",
        "Time to copy one backup to a backup target and read it back there.",
    ),
    (
        "mooring_data_operation_duration_seconds",
        "histogram",
        "Time to back up or restore a volume (kind: backup, restore), verification included.",
    ),
    (
        "mooring_render_total",
        "counter",
        "Renders of an app's desired state (a revision that changes nothing under the app's path is not rendered again).",
    ),
];

/// Every metric must be declared in [`HELP`], or it would never be exposed.
fn declared(name: &str) -> bool {
    HELP.iter().any(|(n, _, _)| *n == name)
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        debug_assert!(declared(name), "metric {name} is not declared in HELP");
        let labels = owned(labels);
        *self.lock().counters.entry((name, labels)).or_default() += 1;
    }

    /// Records a duration in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], d: Duration) {
        debug_assert!(declared(name), "metric {name} is not declared in HELP");
        let secs = d.as_secs_f64();
        let mut inner = self.lock();
        let h = inner.histograms.entry((name, owned(labels))).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Sets an app's info series (sync, health, revision).
    pub fn app_info(&self, app: &str, sync: &str, health: &str, revision: &str) {
        let labels = owned(&[
            ("app", app),
            ("sync", sync),
            ("health", health),
            ("revision", revision),
        ]);
        self.lock().info.insert(app.to_string(), labels);
    }

    /// Sets a gauge.
    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        debug_assert!(declared(name), "metric {name} is not declared in HELP");
        self.lock().gauges.insert((name, owned(labels)), value);
    }

    /// Forgets a host's gauges (config reload removed it).
    pub fn forget_host(&self, host: &str) {
        self.lock().gauges.retain(|(_, labels), _| {
            !labels
                .iter()
                .any(|(k, v)| *k == "host" && v.as_str() == host)
        });
    }

    /// Forgets an app (config reload removed it).
    pub fn forget_app(&self, app: &str) {
        self.lock().info.remove(app);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *kind {
                "gauge" if *name == "mooring_app_info" => {
                    for labels in inner.info.values() {
                        let _ = writeln!(out, "{name}{} 1", fmt_labels(labels, None));
                    }
                }
                "gauge" => {
                    for ((n, labels), v) in &inner.gauges {
                        if n == name {
                            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                        }
                    }
                }
                "counter" => {
                    for ((n, labels), v) in &inner.counters {
                        if n == name {
                            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                        }
                    }
                }
                _ => {
                    for ((n, labels), h) in &inner.histograms {
                        if n != name {
                            continue;
                        }
                        for (i, b) in BUCKETS.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {}",
                                fmt_labels(labels, Some(&b.to_string())),
                                h.counts[i]
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            fmt_labels(labels, Some("+Inf")),
                            h.count
                        );
                        let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum);
                        let _ =
                            writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
                    }
                }
            }
        }
        out
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let m = Metrics::default();
        m.inc(
            "mooring_sync_total",
            &[("app", "blog"), ("result", "succeeded")],
        );
        m.inc(
            "mooring_sync_total",
            &[("app", "blog"), ("result", "succeeded")],
        );
        m.observe(
            "mooring_reconcile_duration_seconds",
            &[("app", "blog")],
            Duration::from_millis(30),
        );
        m.app_info("blog", "Synced", "Healthy", "abc\"1");
        let text = m.render();
        assert!(
            text.contains("mooring_sync_total{app=\"blog\",result=\"succeeded\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "mooring_reconcile_duration_seconds_bucket{app=\"blog\",le=\"0.05\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "mooring_reconcile_duration_seconds_bucket{app=\"blog\",le=\"0.025\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("mooring_reconcile_duration_seconds_count{app=\"blog\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("mooring_app_info{app=\"blog\",sync=\"Synced\",health=\"Healthy\",revision=\"abc\\\"1\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE mooring_webhook_requests_total counter\n"));
    }
}
