//! ARCHITECTURE.md is kept true: its code map has a row for every crate, and every
//! module of a crate's `src` is named in that row (`module` or `parent/module` in
//! backticks). A new module without a line in the map fails here.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Module paths under `src` (`plan/networks`, `stdout`), without roots and tests.
fn modules(src: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            modules(src, &path, out);
            continue;
        }
        let Some(rel) = path
            .strip_prefix(src)
            .ok()
            .and_then(|r| r.to_str())
            .and_then(|r| r.strip_suffix(".rs"))
        else {
            continue;
        };
        let rel = rel.strip_suffix("/mod").unwrap_or(rel);
        let test_only = rel == "tests" || rel.ends_with("/tests") || rel.ends_with("_tests");
        if !test_only && rel != "lib" && rel != "main" {
            out.push(rel.to_string());
        }
    }
}

#[test]
fn the_code_map_names_every_crate_and_module() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut missing = Vec::new();
    for entry in fs::read_dir(root().join("crates"))
        .expect("crates")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let Some(row) = map
            .lines()
            .find(|l| l.starts_with(&format!("| `crates/{name}` |")))
        else {
            missing.push(format!("no row for crates/{name}"));
            continue;
        };
        let mut found = Vec::new();
        modules(&src, &src, &mut found);
        for module in found {
            let leaf = module.rsplit('/').next().unwrap_or(&module);
            if !row.contains(&format!("`{module}`"))
                && !row.contains(&format!("`{leaf}`"))
                && !row.contains(&format!("`{module}`:"))
                && !row.contains(&format!("`{leaf}::"))
                && !row.contains(&format!("`{module}::"))
            {
                missing.push(format!("crates/{name}: {module}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {missing:#?}"
    );
}
