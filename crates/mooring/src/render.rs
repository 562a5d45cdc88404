//! From command-line arguments to a rendered project (through `mooring_server::render`).

use anyhow::Result;
use mooring_compose::{load, LoadOptions};
use mooring_core::Project;
use mooring_server::render::{process_environment, render, RenderRequest, Rendered};
use mooring_vcs::{Cache, SourceSpec};
use std::path::Path;

/// Renders a local project folder (validate, render).
pub fn local(dir: &Path, files: &[String], app: Option<&str>) -> Result<Project> {
    let opts = LoadOptions {
        project_dir: dir.to_path_buf(),
        snapshot_root: dir.to_path_buf(),
        files: files.to_vec(),
        project_name: app.map(str::to_string),
        environment: process_environment(),
        ..Default::default()
    };
    Ok(load(&opts)?)
}

/// Fetches SOURCE at REF and renders the project at PATH in it.
pub fn from_source(
    data_dir: &Path,
    source: &str,
    reference: Option<&str>,
    path: &str,
    files: &[String],
    app: Option<&str>,
) -> Result<Rendered> {
    let spec = SourceSpec::parse(source, reference)?;
    let cache = Cache::new(data_dir);
    let revision = cache.fetch_path(&spec, path)?;
    Ok(render(RenderRequest {
        cache: &cache,
        data_dir,
        spec: &spec,
        revision: &revision,
        path,
        files,
        app,
        environment: process_environment(),
    })?)
}
