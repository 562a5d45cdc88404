//! A BuildKit build's progress as lines for the operation's log, in BuildKit's own
//! plain form (`#4 [web 2/3] RUN make`, its output `#4 …`, `#4 DONE 0.3s`,
//! `#4 CACHED`, `#4 ERROR: …`). The Engine sends it as `moby.buildkit.trace` messages:
//! base64 of a protobuf `StatusResponse` (moby/buildkit's control.proto), of which
//! the few fields read here are declared. Pure: bytes in, lines out.

use base64::Engine as _;
use prost::Message;
use std::collections::HashMap;

/// `moby.buildkit.v1.StatusResponse` (fields 2 and 4, statuses and warnings, unread).
#[derive(Clone, PartialEq, Message)]
struct StatusResponse {
    #[prost(message, repeated, tag = "1")]
    vertexes: Vec<Vertex>,
    #[prost(message, repeated, tag = "3")]
    logs: Vec<VertexLog>,
}

/// One step of the build graph.
#[derive(Clone, PartialEq, Message)]
struct Vertex {
    #[prost(string, tag = "1")]
    digest: String,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(bool, tag = "4")]
    cached: bool,
    #[prost(message, optional, tag = "5")]
    started: Option<Timestamp>,
    #[prost(message, optional, tag = "6")]
    completed: Option<Timestamp>,
    #[prost(string, tag = "7")]
    error: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

impl Timestamp {
    fn secs(self) -> f64 {
        self.seconds as f64 + f64::from(self.nanos) / 1e9
    }
}

/// Output a step printed.
#[derive(Clone, PartialEq, Message)]
struct VertexLog {
    #[prost(string, tag = "1")]
    vertex: String,
    #[prost(bytes = "vec", tag = "4")]
    msg: Vec<u8>,
}

/// What has been said of one step.
#[derive(Debug, Default)]
struct Step {
    number: usize,
    name: String,
    started: bool,
    ended: bool,
}

/// The progress of one build, fed message by message.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    steps: HashMap<String, Step>,
    /// Output of a step not yet ended by a newline (a line may come in pieces).
    partial: HashMap<String, String>,
    /// The step that failed and its error, once one has.
    pub(crate) failed: Option<(String, String)>,
}

impl Progress {
    /// How many steps the build has shown.
    pub(crate) fn steps(&self) -> usize {
        self.steps.len()
    }

    /// The lines one `moby.buildkit.trace` message (`aux`, base64) adds; an
    /// unreadable one adds none (progress is for people; the build's result is not
    /// read from it).
    pub(crate) fn lines(&mut self, aux: &str) -> Vec<String> {
        let Some(status) = base64::engine::general_purpose::STANDARD
            .decode(aux)
            .ok()
            .and_then(|b| StatusResponse::decode(b.as_slice()).ok())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in status.vertexes {
            let next = self.steps.len() + 1;
            let step = self.steps.entry(v.digest.clone()).or_insert_with(|| Step {
                number: next,
                name: v.name.clone(),
                ..Step::default()
            });
            let n = step.number;
            if (v.started.is_some() || v.cached) && !step.started {
                step.started = true;
                out.push(format!("#{n} {}", step.name));
            }
            if step.ended {
                continue;
            }
            let ends = v.cached || !v.error.is_empty() || v.completed.is_some();
            if ends {
                if let Some(rest) = self
                    .partial
                    .remove(&v.digest)
                    .filter(|r| !r.trim().is_empty())
                {
                    out.push(format!("#{n} {}", rest.trim_end()));
                }
            }
            if v.cached {
                step.ended = true;
                out.push(format!("#{n} CACHED"));
            } else if !v.error.is_empty() {
                step.ended = true;
                out.push(format!("#{n} ERROR: {}", v.error));
                // The first failure is the cause; others are cancelled with it.
                if self.failed.is_none() {
                    self.failed = Some((step.name.clone(), v.error.clone()));
                }
            } else if let (Some(start), Some(end)) = (v.started, v.completed) {
                step.ended = true;
                out.push(format!(
                    "#{n} DONE {:.1}s",
                    (end.secs() - start.secs()).max(0.0)
                ));
            }
        }
        for log in status.logs {
            let n = self.steps.get(&log.vertex).map_or(0, |s| s.number);
            let pending = self.partial.entry(log.vertex.clone()).or_default();
            pending.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let line = line.trim_end();
                if !line.is_empty() {
                    out.push(format!("#{n} {line}"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aux(status: &StatusResponse) -> String {
        base64::engine::general_purpose::STANDARD.encode(status.encode_to_vec())
    }

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            cached: false,
            started: None,
            completed: None,
            error: String::new(),
        }
    }

    #[test]
    fn steps_their_output_and_the_failing_one_read_as_buildkit_prints_them() {
        let mut p = Progress::default();
        let at = |s| {
            Some(Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        let cached = Vertex {
            cached: true,
            started: at(1),
            completed: at(1),
            ..vertex("a", "[1/3] FROM base")
        };
        let run = Vertex {
            started: at(2),
            ..vertex("b", "[2/3] RUN make")
        };
        let lines = p.lines(&aux(&StatusResponse {
            vertexes: vec![cached, run.clone()],
            logs: vec![],
        }));
        assert_eq!(
            lines,
            ["#1 [1/3] FROM base", "#1 CACHED", "#2 [2/3] RUN make"]
        );
        let lines = p.lines(&aux(&StatusResponse {
            vertexes: vec![],
            logs: vec![VertexLog {
                vertex: "b".into(),
                msg: b"compiling\nlinking\n".to_vec(),
            }],
        }));
        assert_eq!(lines, ["#2 compiling", "#2 linking"]);
        let failed = Vertex {
            completed: at(4),
            error: "exit code: 2".into(),
            ..run
        };
        let lines = p.lines(&aux(&StatusResponse {
            vertexes: vec![failed.clone(), failed],
            logs: vec![],
        }));
        assert_eq!(lines, ["#2 ERROR: exit code: 2"]);
        assert_eq!(
            p.failed,
            Some(("[2/3] RUN make".to_string(), "exit code: 2".to_string()))
        );
        assert!(p.lines("not base64!").is_empty());
    }

    #[test]
    fn a_line_in_pieces_is_one_line() {
        let mut p = Progress::default();
        let run = Vertex {
            started: Some(Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..vertex("r", "[1/1] RUN x")
        };
        p.lines(&aux(&StatusResponse {
            vertexes: vec![run.clone()],
            logs: vec![],
        }));
        let piece = |m: &[u8]| StatusResponse {
            vertexes: vec![],
            logs: vec![VertexLog {
                vertex: "r".into(),
                msg: m.to_vec(),
            }],
        };
        assert!(p.lines(&aux(&piece(b"sec"))).is_empty());
        assert_eq!(
            p.lines(&aux(&piece(b"ret-value\nnext"))),
            ["#1 secret-value"]
        );
        let done = Vertex {
            completed: Some(Timestamp {
                seconds: 2,
                nanos: 0,
            }),
            ..run
        };
        assert_eq!(
            p.lines(&aux(&StatusResponse {
                vertexes: vec![done],
                logs: vec![]
            })),
            ["#1 next", "#1 DONE 1.0s"]
        );
    }

    #[test]
    fn a_finished_step_says_how_long_it_took() {
        let mut p = Progress::default();
        let v = Vertex {
            started: Some(Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            completed: Some(Timestamp {
                seconds: 10,
                nanos: 300_000_000,
            }),
            ..vertex("c", "[2/2] COPY . /app")
        };
        let lines = p.lines(&aux(&StatusResponse {
            vertexes: vec![v],
            logs: vec![],
        }));
        assert_eq!(lines, ["#1 [2/2] COPY . /app", "#1 DONE 0.3s"]);
    }
}
