//! `validate` and `render` on project folders: no Docker involved.

use crate::common::mooring;
use std::fs;

fn project(compose: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    dir
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = mooring(args, None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn validate_reports_position_and_exit_code() {
    let dir = project("services:\n  web:\n    image: x\n    ports: [\"80:http\"]\n");
    let (code, _, err) = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: compose.yaml:4:13: services.web.ports: invalid container port \"http\" in \"80:http\"");
    let dir = project("services:\n  web:\n    image: x\n");
    let (code, out, _) = run(&["validate", dir.path().to_str().unwrap(), "--app", "shop"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("shop: valid (1 service, 1 network, 0 volumes)"),
        "{out}"
    );
}

#[test]
fn every_output_offered_works_and_no_other_is_offered() {
    let dir = project("services:\n  web:\n    image: x\n");
    let d = dir.path().to_str().unwrap();
    let (code, out, _) = run(&["render", d, "-o", "json"]);
    assert_eq!(code, 0);
    assert!(out.trim_start().starts_with('{'), "{out}");
    let (code, out, _) = run(&["render", d, "-o", "yaml"]);
    assert_eq!(code, 0);
    assert!(out.contains("services:"), "{out}");
    // `-o yaml` was accepted and ignored by these: now it is refused before anything runs.
    for args in [
        &["diff", d, "-o", "yaml"][..],
        &["sync", d, "-o", "yaml"],
        &["app", "list", "-o", "yaml"],
        &["backup", "list", "-o", "yaml"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("invalid value 'yaml'"), "{args:?}: {err}");
    }
}

#[test]
fn render_prints_the_resolved_project() {
    let dir =
        project("services:\n  web:\n    image: \"busybox:${TAG:-1}\"\n    environment: [A=1]\n");
    fs::write(dir.path().join(".env"), "TAG=2\n").unwrap();
    let (code, out, _) = run(&["render", dir.path().to_str().unwrap(), "--app", "demo"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("name: demo\nservices:\n  web:\n    image: \"busybox:2\"\n"),
        "{out}"
    );
    let (code, out, _) = run(&[
        "render",
        dir.path().to_str().unwrap(),
        "--app",
        "demo",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["services"]["web"]["environment"]["A"], "1");
    assert_eq!(v["networks"]["default"]["name"], "demo_default");
}

#[test]
fn several_files_with_f() {
    let dir = project("services:\n  web:\n    image: x\n");
    fs::write(
        dir.path().join("prod.yaml"),
        "services:\n  web:\n    image: y\n",
    )
    .unwrap();
    let p = dir.path().to_str().unwrap();
    let (code, out, _) = run(&[
        "render",
        p,
        "-f",
        "compose.yaml",
        "-f",
        "prod.yaml",
        "--app",
        "a",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("\"image\": \"y\""), "{out}");
    let (code, _, err) = run(&["render", p, "-f", "../outside.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("leaves the repository"), "{err}");
}

#[test]
fn billion_laughs_is_refused_with_the_alias_bound() {
    let dir = project(&crate::common::billion_laughs("laughs"));
    let started = std::time::Instant::now();
    let (code, _, err) = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        err.starts_with("error: compose.yaml:8:") && err.contains("excessive YAML aliasing"),
        "{err}"
    );
    assert!(err.contains("alias bound"), "{err}");
}

#[test]
fn the_shell_environment_interpolates_but_not_mooring_variables() {
    let dir = project(
        "services:\n  web:\n    image: x\n    environment:\n      SHELL_VALUE: \"${RENDER_TEST_SHELL:-absent}\"\n      OWN: \"${MOORING_RENDER_TEST_TOKEN:-absent}\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["render", dir.path().to_str().unwrap(), "--app", "demo"])
        .args(["-o", "json"])
        .env("RENDER_TEST_SHELL", "from-shell")
        .env("MOORING_RENDER_TEST_TOKEN", "mooring-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let env = &v["services"]["web"]["environment"];
    assert_eq!(env["SHELL_VALUE"], "from-shell", "as docker compose does");
    assert_eq!(
        env["OWN"], "absent",
        "MOORING_* variables are Mooring's own"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = project("services:\n  web:\n    image: x\n");
    for args in [&["render"][..], &["render", "-o", "json"], &["validate"]] {
        // `mooring render DIR | true`: the reader is gone before the first line.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
            .args(args)
            .arg(dir.path())
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `mooring completions bash` completes subcommands in a real bash; zsh and fish
/// scripts and the manual page are generated from the same command line definition.
#[test]
fn completions_and_the_manual_page() {
    let bash = mooring(&["completions", "bash"], None);
    assert!(bash.status.success());
    let script = tempfile::NamedTempFile::new().unwrap();
    fs::write(script.path(), &bash.stdout).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(mooring sy); COMP_CWORD=1; COMP_LINE='mooring sy'; COMP_POINT=10; _mooring mooring sy mooring; echo \"${{COMPREPLY[@]}}\"",
            script.path().display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sync");
    for (shell, marker) in [("zsh", "#compdef mooring"), ("fish", "complete -c mooring")] {
        let out = mooring(&["completions", shell], None);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
    let man = mooring(&["man"], None);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") && page.contains(".TH mooring 1"),
        "{page}"
    );
    for sub in [
        "validate",
        "render",
        "diff",
        "sync",
        "serve",
        "backup",
        "completions",
    ] {
        assert!(page.contains(sub), "{sub} in the manual page");
    }
    assert!(mooring(&["completions", "tcsh"], None).status.code() == Some(2));
}
