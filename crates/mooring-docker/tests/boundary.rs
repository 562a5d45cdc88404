//! ARCHITECTURE.md's claim, checked: bollard types never leave `mooring-docker`. No other
//! crate depends on bollard or names it, and no public item of this crate (a `pub` fn's
//! signature, a `pub` field, a re-export) names a type this crate imports from bollard.

use std::fs;
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates folder")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_other_crate_uses_bollard() {
    let mut offenders = Vec::new();
    for entry in fs::read_dir(crates_dir()).expect("crates").flatten() {
        let krate = entry.path();
        if krate.file_name().is_some_and(|n| n == "mooring-docker") || !krate.is_dir() {
            continue;
        }
        let manifest = fs::read_to_string(krate.join("Cargo.toml")).unwrap_or_default();
        if manifest.contains("bollard") {
            offenders.push(krate.join("Cargo.toml"));
        }
        let mut files = Vec::new();
        for sub in ["src", "tests", "examples", "benches"] {
            if krate.join(sub).is_dir() {
                rust_files(&krate.join(sub), &mut files);
            }
        }
        for f in files {
            if fs::read_to_string(&f)
                .unwrap_or_default()
                .contains("bollard")
            {
                offenders.push(f);
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "bollard outside mooring-docker: {offenders:?}"
    );
}

/// The names a file imports from bollard (`use bollard::x::{A, B as C}` → A, C).
fn bollard_names(text: &str) -> Vec<String> {
    let mut names = vec!["bollard".to_string()];
    let mut rest = text;
    while let Some(i) = rest.find("use bollard::") {
        let stmt = &rest[i..];
        let end = stmt.find(';').unwrap_or(stmt.len());
        let body = &stmt["use bollard::".len()..end];
        let inner = match (body.find('{'), body.rfind('}')) {
            (Some(a), Some(b)) => &body[a + 1..b],
            _ => body.rsplit("::").next().unwrap_or(body),
        };
        for part in inner.split(',') {
            let part = part.trim();
            let name = part.rsplit(" as ").next().unwrap_or(part).trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() && name != "self" {
                names.push(name.to_string());
            }
        }
        rest = &stmt[end..];
    }
    names
}

/// Whether `text` names `name` as a whole word.
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

#[test]
fn no_public_item_names_a_bollard_type() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut offenders = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).expect("read");
        let imported = bollard_names(&text);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !t.starts_with("pub ") || t.starts_with("pub(") {
                continue;
            }
            // The item's signature: up to its body or its end.
            let mut signature = String::new();
            for l in &lines[i..] {
                signature.push_str(l);
                if l.contains('{') || l.trim_end().ends_with(';') || l.trim_end().ends_with(',') {
                    break;
                }
            }
            let signature = signature.split('{').next().unwrap_or("");
            if let Some(n) = imported.iter().find(|n| names(signature, n)) {
                offenders.push(format!("{}:{}: {n}", f.display(), i + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "public items naming bollard types: {offenders:#?}"
    );
}
