//! Human and JSON output: plans (with colour on a terminal), sync progress, results.

use mooring_core::{Action, Plan};
use mooring_docker::reconcile::{Outcome, Progress as Event};
use mooring_render::Rendered;
use serde_json::json;
use std::io::IsTerminal;
use std::process::ExitCode;

struct Style {
    color: bool,
}

impl Style {
    fn stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn sign(&self, action: &Action) -> String {
        self.sign_of(action.verb())
    }

    /// The sign of an action by its verb (`Action::verb`; the API sends it too).
    fn sign_of(&self, verb: &str) -> String {
        match verb {
            "create" => self.paint("32", "+"),
            "recreate" => self.paint("33", "~"),
            "start" | "pull" => self.paint("36", ">"),
            "remove" => self.paint("31", "-"),
            "back up" => self.paint("34", "⇣"),
            "restore" => self.paint("34", "⇡"),
            _ => "·".to_string(),
        }
    }
}

/// One step of a plan the daemon sent (`GET …/diff`'s `steps`), printed as `diff`
/// prints its own: sign, what, why.
pub fn step(verb: &str, text: &str, reason: &str) {
    let s = Style::stdout();
    println!("  {} {text}  {}", s.sign_of(verb), s.paint("2", reason));
}

/// `1 network`, `2 networks`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Warnings from rendering, on stderr.
pub fn notes(notes: &[String]) {
    for n in notes {
        eprintln!("note: {n}");
    }
}

fn plan_json(plan: &Plan, rendered: &Rendered) -> serde_json::Value {
    json!({
        "app": plan.app,
        "revision": rendered.revision.id,
        "revision_describe": rendered.revision.describe,
        "in_sync": plan.in_sync(),
        "actions": plan.actions,
        "orphans_kept": plan.orphans_kept,
        "notes": plan.notes,
    })
}

fn header(plan: &Plan, rendered: &Rendered) -> String {
    format!("app {} at {}", plan.app, rendered.revision.describe)
}

/// Prints a plan (`diff`).
pub fn plan(plan: &Plan, rendered: &Rendered, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan_json(plan, rendered)).unwrap_or_default()
        );
        return;
    }
    let s = Style::stdout();
    println!("{}", header(plan, rendered));
    print_actions(plan, &s);
    if plan.in_sync() {
        println!("in sync: the host matches the desired state.");
    } else {
        println!(
            "out of sync: {}, {}.",
            count(plan.actions.len(), "action to apply", "actions to apply"),
            count(plan.orphans_kept.len(), "orphan kept", "orphans kept")
        );
    }
}

fn print_actions(plan: &Plan, s: &Style) {
    let width = plan
        .actions
        .iter()
        .map(|a| a.action.to_string().len())
        .max()
        .unwrap_or(0);
    for a in &plan.actions {
        let text = a.action.to_string();
        println!(
            "  {} {text:width$}  {}",
            s.sign(&a.action),
            s.paint("2", &a.reason)
        );
    }
    for o in &plan.orphans_kept {
        println!(
            "  {} orphan container {o} kept (its service is gone; --prune removes it)",
            s.paint("35", "!")
        );
    }
    for n in &plan.notes {
        println!("  note: {n}");
    }
}

/// Live progress of a sync, one line per finished action.
pub struct Progress {
    json: bool,
    style: Style,
}

impl Progress {
    pub fn new(json: bool) -> Progress {
        Progress {
            json,
            style: Style::stdout(),
        }
    }

    pub fn report(&self, event: Event<'_>) {
        if self.json {
            return;
        }
        match event {
            Event::Started(_) => {}
            Event::Waiting { service, condition } => {
                println!("  … waiting for {service} to be {condition}")
            }
            Event::Output { line, .. } => println!("    {}", self.style.paint("2", line)),
            Event::Finished(r) => match &r.error {
                None => println!(
                    "  {} {}  {}{}",
                    self.style.paint("32", "✓"),
                    r.action.action,
                    self.style.paint(
                        "2",
                        &format!("{:.1}s · {}", r.duration.as_secs_f64(), r.action.reason)
                    ),
                    r.detail
                        .as_deref()
                        .map(|d| format!(" · {d}"))
                        .unwrap_or_default()
                ),
                Some(e) => println!("  {} {}: {e}", self.style.paint("31", "✗"), r.action.action),
            },
        }
    }
}

/// Prints the result of a sync and returns the exit code.
pub fn sync(outcome: &Outcome, rendered: &Rendered, dry_run: bool, json: bool) -> ExitCode {
    let failure = outcome.failure();
    if json {
        let results: Vec<_> = outcome
            .results
            .iter()
            .map(|r| json!({"action": r.action, "seconds": r.duration.as_secs_f64(), "error": r.error, "detail": r.detail}))
            .collect();
        let mut v = plan_json(&outcome.plan, rendered);
        v["dry_run"] = json!(dry_run);
        v["results"] = json!(results);
        v["ok"] = json!(failure.is_none());
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let plan = &outcome.plan;
        if dry_run {
            println!("{} (dry run: nothing changed)", header(plan, rendered));
            print_actions(plan, &Style::stdout());
        } else if plan.actions.is_empty() {
            println!(
                "{}: nothing to do, the host already matches.",
                header(plan, rendered)
            );
            print_actions(plan, &Style::stdout());
        } else {
            match failure {
                None => println!("{}: synced ({}).", header(plan, rendered), count(outcome.results.len(), "action", "actions")),
                Some(f) => eprintln!(
                    "error: sync of {} failed at `{}`: {}\nthe host is left consistent; run sync again once the cause is fixed.",
                    plan.app,
                    f.action.action,
                    f.error.as_deref().unwrap_or("")
                ),
            }
            for o in &plan.orphans_kept {
                println!("  ! orphan container {o} kept (its service is gone; --prune removes it)");
            }
            for n in &plan.notes {
                println!("  note: {n}");
            }
        }
    }
    if failure.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
