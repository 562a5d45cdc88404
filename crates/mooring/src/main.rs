//! `mooring`: the command-line interface. Thin: parses arguments, calls the library
//! crates (source → render → observe → plan → apply), prints.
//!
//! Exit codes: 0 success (and, for `diff`, in sync); 2 `diff` found differences;
//! 1 error (bad input, source or Docker failure, a failed action).

#[macro_use]
mod stdout;
mod backup;
mod client;
mod daemon_backup;
mod docker_login;
mod print;
mod render;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use mooring_core::policy::{Exception, Policy, Profile};
use mooring_docker::{reconcile, Provider, ReconcileOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mooring",
    version,
    about = "Keeps Docker hosts moored to what a repository says."
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes: where the configuration, the data and the daemon are.
#[derive(clap::Args)]
struct Globals {
    /// The daemon's configuration file (default: ./mooring.yaml). Every command takes
    /// its data directory and its server's address from it.
    #[arg(long, global = true, env = "MOORING_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (repository cache, deploy trees, backups). Default: the
    /// configuration's `server.data_dir` when there is a configuration, else the
    /// platform's data directory.
    #[arg(long, global = true, env = "MOORING_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The daemon's URL. Default: the configuration's `server.listen`, else
    /// http://127.0.0.1:7420.
    #[arg(long, global = true, env = "MOORING_SERVER")]
    server: Option<String>,
    /// API token for the daemon.
    #[arg(long, global = true, env = "MOORING_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The Docker Engine for one-shot commands, named as the Docker CLI names it:
    /// unix:///path, tcp://host:2376 (TLS from DOCKER_CERT_PATH/DOCKER_TLS_VERIFY),
    /// ssh://user@host (ssh's own configuration, or MOORING_SSH_IDENTITY and
    /// MOORING_SSH_KNOWN_HOSTS). Default: the local socket.
    #[arg(long = "host", global = true, env = "DOCKER_HOST")]
    docker_host: Option<String>,
    /// The configuration, read once (or why it could not be) by the first that asks.
    #[arg(skip)]
    loaded: std::cell::OnceCell<Result<Option<mooring_server::config::Config>, String>>,
}

/// `-o` of `render`: the project as Compose prints it.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RenderFormat {
    Yaml,
    Json,
}

/// `-o` of every other command: for people, or for programs.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Compose file(s), relative to the project folder; merged in order.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// App (Compose project) name; default: `name:` in the file, else the folder's name.
    #[arg(long)]
    app: Option<String>,
    /// A profile to enable (repeatable); default: COMPOSE_PROFILES from the environment
    /// or the project's .env. Services with `profiles:` run only when one is enabled.
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
}

impl RenderArgs {
    fn project(&self) -> render::ProjectArgs<'_> {
        render::ProjectArgs {
            files: &self.files,
            app: self.app.as_deref(),
            profiles: &self.profiles,
        }
    }
}

/// What the repository may ask of the host.
#[derive(clap::Args)]
struct PolicyArgs {
    /// Policy profile: baseline (no Docker socket, sensitive host paths, added
    /// capabilities, device or external volumes, external networks), restricted (also no
    /// host bind mounts), privileged (anything Compose accepts).
    #[arg(long = "policy", value_name = "PROFILE", default_value = "baseline", value_parser = parse_profile)]
    profile: Profile,
    /// An exception to the profile (repeatable): docker_socket, host_network,
    /// host_path:/PATH, cap:NAME, volume:NAME, network:NAME.
    #[arg(long = "allow", value_name = "EXCEPTION", value_parser = parse_exception)]
    allow: Vec<Exception>,
}

impl PolicyArgs {
    fn policy(&self) -> Policy {
        Policy {
            profile: self.profile,
            allow: self.allow.clone(),
        }
    }
}

#[derive(clap::Args)]
struct SourceArgs {
    /// A local folder, or a Git repository (local path, file://, https://, ssh://, git:// URL).
    source: String,
    /// Branch, tag or full commit id (Git); default: the remote's HEAD.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Folder in the repository holding the Compose files.
    #[arg(long, default_value = "")]
    path: String,
    /// Private key file for an SSH source (ssh://, user@host:path, svn+ssh://,
    /// hg+ssh://); default: your ssh keys and agent.
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,
    /// SSH host keys to trust: a known_hosts file, or accept-new; default: your
    /// known_hosts (an unknown host is refused).
    #[arg(long, value_name = "FILE|accept-new")]
    known_hosts: Option<String>,
    #[command(flatten)]
    render: RenderArgs,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Also remove containers and networks of services the project no longer declares.
    #[arg(long)]
    prune: bool,
    /// What happens to volumes the project no longer declares: protect (kept), or
    /// backup-then-delete (with --prune: a verified backup, then removal).
    #[arg(long, default_value = "protect", value_parser = parse_policy)]
    data_policy: mooring_core::DataPolicy,
    /// Recreate this volume whose definition changed (VolumeDiverged): back it up, remove
    /// it, create it as declared, restore the backup. Repeatable.
    #[arg(long = "recreate-volume", value_name = "VOLUME")]
    recreate_volumes: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Render a project and report errors (file:line:col); changes nothing.
    Validate {
        /// Project folder.
        dir: PathBuf,
        #[command(flatten)]
        render: RenderArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Print the fully resolved project, like `docker compose config`.
    Render {
        dir: PathBuf,
        #[command(flatten)]
        render: RenderArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        output: RenderFormat,
    },
    /// Show what a sync would change. Exit 0 in sync, 2 out of sync, 1 on error.
    Diff {
        #[command(flatten)]
        source: SourceArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Bring the host to the state the source declares.
    Sync {
        #[command(flatten)]
        source: SourceArgs,
        /// Plan and print, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Shell completions for bash, zsh or fish, on stdout (e.g. `mooring completions bash
    /// > /etc/bash_completion.d/mooring`).
    Completions { shell: clap_complete::Shell },
    /// The manual page (roff), on stdout (e.g. `mooring man | man -l -`).
    Man,
    /// Run the reconciler daemon: every app of the configuration (--config),
    /// continuously.
    Serve,
    /// Verified volume backups: create, list, verify, restore, prune.
    Backup {
        #[arg(
            short = 'o',
            long = "output",
            value_enum,
            global = true,
            default_value = "text"
        )]
        output: Format,
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// API tokens (works on the store directly, no server needed).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Talk to a running server.
    App {
        #[arg(
            short = 'o',
            long = "output",
            value_enum,
            global = true,
            default_value = "text"
        )]
        output: Format,
        #[command(subcommand)]
        command: AppCommand,
    },
    /// The daemon's Docker hosts: whether each answers, and accepting a replaced one.
    Host {
        #[arg(
            short = 'o',
            long = "output",
            value_enum,
            global = true,
            default_value = "text"
        )]
        output: Format,
        #[command(subcommand)]
        command: HostCommand,
    },
}

#[derive(Subcommand)]
enum HostCommand {
    /// Every host: endpoint, whether it answers (why not, last seen), its apps.
    List,
    /// Accept the Docker Engine a host answers as now (a machine replaced on purpose):
    /// its apps are deployed to it again.
    Accept {
        name: String,
        /// Only this Engine id (as `host list` shows it): another one is not accepted.
        #[arg(long)]
        engine_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Back up an app's volumes now (tar + zstd, manifest with sha256, read back and verified).
    Create {
        app: String,
        /// Only this volume (its Docker name).
        #[arg(long)]
        volume: Option<String>,
    },
    /// The catalogue: app, volume, size, files, sha256, revision, reason.
    List { app: Option<String> },
    /// Re-check an archive against its manifest. Exit 0 ok, 1 damaged.
    Verify { id: String },
    /// Restore a verified backup; refuses a non-empty volume without --force.
    Restore {
        id: String,
        /// Restore into this volume instead (created when missing).
        #[arg(long)]
        to_volume: Option<String>,
        /// Overwrite files in a non-empty volume (files not in the backup are kept).
        #[arg(long)]
        force: bool,
    },
    /// Remove old backups.
    Prune {
        /// Keep the newest N per app and volume.
        #[arg(long)]
        keep: Option<usize>,
        /// Remove backups older than this (30d, 12h, 90m).
        #[arg(long, value_parser = backup::parse_age)]
        older_than: Option<std::time::Duration>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (shown once).
    Create {
        /// viewer (read), operator (sync, rollback) or admin (tokens, reload).
        #[arg(long)]
        role: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// The token stops working after this long (e.g. 30d, 12h, 1w); default: never.
        #[arg(long, value_name = "LIFETIME")]
        expires: Option<String>,
        /// Limit the token to this app (repeatable): it sees and acts on these apps
        /// only, and cannot use global routes (tokens, reload, metrics).
        #[arg(long = "app", value_name = "NAME")]
        apps: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Every app with sync status, health and revision.
    List,
    /// One app: status, conditions, resources, recent operations.
    Get { name: String },
    /// What a sync would change. Exit 0 in sync, 2 out of sync.
    Diff { name: String },
    /// Sync now, optionally to a revision; waits for the operation.
    Sync {
        name: String,
        #[arg(long)]
        revision: Option<String>,
    },
    /// Operations, newest first.
    History { name: String },
    /// The app's container logs (`SERVICE | TIMESTAMP LINE`): the last lines, and with
    /// -f the new ones as they are written (until Ctrl-C).
    Logs {
        name: String,
        /// Only this service.
        service: Option<String>,
        /// Keep following new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines of each container to start with.
        #[arg(long, default_value_t = 200)]
        tail: usize,
    },
    /// Deploy an earlier revision (or `#ID` of an operation) and pin the app there.
    Rollback {
        name: String,
        #[arg(long)]
        to: String,
    },
    /// Send a signed sample push of PROVIDER (github, gitlab, gitea, forgejo, bitbucket,
    /// generic) to the server, as the provider would, with the secret from --config:
    /// the server's answer says which apps it refreshes.
    HookTest {
        provider: String,
        /// The pushed repository's URL (as the apps' sources name it).
        #[arg(long)]
        repository: String,
        /// The pushed branch.
        #[arg(long = "ref", default_value = "main")]
        reference: String,
    },
    /// Re-read the server's configuration file (refused, changing nothing, when it is
    /// invalid, or when it declares no apps while apps run unless --force).
    Reload {
        #[arg(long)]
        force: bool,
    },
    /// Hold the app at its deployed revision (or the one given): auto-sync stops moving it.
    Pin {
        name: String,
        #[arg(long)]
        revision: Option<String>,
    },
    /// Remove the pin: auto-sync follows the source again.
    Unpin { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

impl Globals {
    /// The configuration file: `--config`, `MOORING_CONFIG`, else `./mooring.yaml`.
    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("mooring.yaml"))
    }

    /// The configuration when one is named, or `./mooring.yaml` exists; `None` otherwise.
    /// Read once per command.
    fn found_config(&self) -> Result<Option<&mooring_server::config::Config>> {
        let loaded = self.loaded.get_or_init(|| {
            let path = self.config_path();
            if self.config.is_none() && !path.exists() {
                return Ok(None);
            }
            mooring_server::config::load(&path)
                .map(Some)
                .map_err(|e| format!("invalid configuration: {e}"))
        });
        loaded
            .as_ref()
            .map(Option::as_ref)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The data directory, one rule for every command: `--data-dir`/`MOORING_DATA_DIR`,
    /// else the configuration's `server.data_dir`, else the platform's data directory.
    fn data_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        if let Some(cfg) = self.found_config()? {
            return Ok(cfg.server.data_dir.clone());
        }
        dirs::data_dir().map(|d| d.join("mooring")).context(
            "no data directory could be determined; pass --data-dir or set MOORING_DATA_DIR",
        )
    }

    /// The daemon that manages `app`, to send commands on it to: when the configuration
    /// declares the app and its daemon answers (`None`: done here, directly).
    fn daemon_of(&self, app: &str) -> Result<Option<client::Client>> {
        let managed = self
            .found_config()?
            .is_some_and(|cfg| cfg.apps.iter().any(|a| a.name == app));
        if !managed {
            return Ok(None);
        }
        let c = self.client()?;
        if c.answers() {
            return Ok(Some(c));
        }
        eprintln!(
            "note: the daemon managing {app} does not answer at {}; working on the host directly",
            c.server()
        );
        Ok(None)
    }

    /// A client of the daemon: `--server`/`MOORING_SERVER`, else the configuration's
    /// `server.listen`, else http://127.0.0.1:7420.
    fn client(&self) -> Result<client::Client> {
        let server = match &self.server {
            Some(s) => s.clone(),
            None => match self.found_config()? {
                Some(cfg) => client::url_of(cfg.server.listen),
                None => "http://127.0.0.1:7420".to_string(),
            },
        };
        Ok(client::Client::new(&server, self.token.clone()))
    }
}

impl Globals {
    /// The age identities for SOPS files: the process's (`SOPS_AGE_KEY`,
    /// `SOPS_AGE_KEY_FILE`, sops's default key file) and the configuration's top-level
    /// `sops.age`, when there is a configuration.
    fn sops_keys(&self) -> Result<mooring_sops::Keys> {
        let mut keys = mooring_sops::Keys::from_environment().map_err(anyhow::Error::msg)?;
        if let Some(cfg) = self.found_config()? {
            keys.extend(&cfg.sops);
        }
        Ok(keys)
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let Cli {
        globals: g,
        command,
    } = cli;
    match command {
        Command::Validate {
            dir,
            render,
            policy,
        } => {
            let mut project = render::local(&dir, &render.project(), g.sops_keys()?)?;
            let protected: Vec<PathBuf> = g.data_dir().into_iter().collect();
            mooring_render::enforce_policy(&mut project, &policy.policy(), &protected).map_err(
                |refused| {
                    anyhow::anyhow!(
                        "{} asks for more than policy {} allows:\n{refused}",
                        project.name,
                        policy.profile
                    )
                },
            )?;
            print::notes(&project.notes);
            println!(
                "{}: valid ({}, {}, {}) from {}",
                project.name,
                print::count(project.services.len(), "service", "services"),
                print::count(project.networks.len(), "network", "networks"),
                print::count(project.volumes.len(), "volume", "volumes"),
                project.config_files.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            dir,
            render,
            output,
        } => {
            let project = render::local(&dir, &render.project(), g.sops_keys()?)?;
            print::notes(&project.notes);
            match output {
                RenderFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&mooring_compose::output::to_json(&project))?
                ),
                RenderFormat::Yaml => print!("{}", mooring_compose::output::to_yaml(&project)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "mooring",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("writing the manual page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            init_logging();
            let config = g.config_path();
            block_on(async {
                mooring_server::serve::serve(&config)
                    .await
                    .map_err(anyhow::Error::msg)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { output, command } => {
            let data_dir = g.data_dir()?;
            let json = output == Format::Json;
            match command {
                BackupCommand::Create { app, volume } => match g.daemon_of(&app)? {
                    Some(c) => daemon_backup::create(&c, &app, volume.as_deref(), json),
                    None => block_on(backup::create(
                        g.docker_host.as_deref(),
                        &data_dir,
                        &app,
                        volume.as_deref(),
                        json,
                    )),
                },
                BackupCommand::List { app } => backup::list_cmd(&data_dir, app.as_deref(), json),
                BackupCommand::Verify { id } => backup::verify_cmd(&data_dir, &id),
                BackupCommand::Restore {
                    id,
                    to_volume,
                    force,
                } => {
                    let app = mooring_backup::load(&backup::dir(&data_dir), &id)?
                        .manifest
                        .meta
                        .app;
                    match g.daemon_of(&app)? {
                        Some(c) => {
                            daemon_backup::restore(&c, &app, &id, to_volume.as_deref(), force, json)
                        }
                        None => block_on(backup::restore(
                            g.docker_host.as_deref(),
                            &data_dir,
                            &id,
                            to_volume.as_deref(),
                            force,
                        )),
                    }
                }
                BackupCommand::Prune { keep, older_than } => {
                    backup::prune_cmd(&data_dir, keep, older_than)
                }
            }
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    role,
                    name,
                    expires,
                    apps,
                },
        } => {
            let role: mooring_store::Role = role
                .parse()
                .map_err(|e: mooring_store::ParseRoleError| anyhow::anyhow!("{e}"))?;
            let config = g.config_path();
            let cfg = mooring_server::config::load(&config)
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
            let configured: Vec<String> = cfg.apps.iter().map(|a| a.name.clone()).collect();
            let now = mooring_store::now_ms();
            let options = mooring_server::access::token_options(
                expires.as_deref(),
                (!apps.is_empty()).then_some(apps),
                &configured,
                now,
            )
            .map_err(|e| anyhow::anyhow!("{e} (in {})", config.display()))?;
            let store = mooring_server::serve::open_store(&cfg).map_err(anyhow::Error::msg)?;
            let token = store.create_token_with(&name, role, &options, now)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Host { output, command } => {
            let c = g.client()?;
            let json = output == Format::Json;
            match command {
                HostCommand::List => client::hosts(&c, json),
                HostCommand::Accept { name, engine_id } => {
                    client::accept_host(&c, &name, engine_id.as_deref(), json)
                }
            }
        }
        Command::App { output, command } => {
            let c = g.client()?;
            let json = output == Format::Json;
            match command {
                AppCommand::List => client::list(&c, json),
                AppCommand::Get { name } => client::get(&c, &name, json),
                AppCommand::Diff { name } => client::diff(&c, &name, json),
                AppCommand::Sync { name, revision } => client::operate(
                    &c,
                    &name,
                    "sync",
                    serde_json::json!({ "revision": revision }),
                    json,
                ),
                AppCommand::History { name } => client::history(&c, &name, json),
                AppCommand::Logs {
                    name,
                    service,
                    follow,
                    tail,
                } => client::logs(&c, &name, service.as_deref(), follow, tail),
                AppCommand::Rollback { name, to } => {
                    client::operate(&c, &name, "rollback", serde_json::json!({ "to": to }), json)
                }
                AppCommand::Pin { name, revision } => client::pin(&c, &name, revision.as_deref()),
                AppCommand::Unpin { name } => client::unpin(&c, &name),
                AppCommand::Reload { force } => client::reload(&c, force, json),
                AppCommand::HookTest {
                    provider,
                    repository,
                    reference,
                } => {
                    let config = g.config_path();
                    let cfg = mooring_server::config::load(&config)?;
                    let hooks = &cfg.webhooks;
                    let secret = match provider.as_str() {
                        "github" => hooks.github.as_ref(),
                        "gitlab" => hooks.gitlab.as_ref(),
                        "gitea" | "forgejo" => hooks.gitea.as_ref(),
                        "bitbucket" => hooks.bitbucket.as_ref(),
                        _ => hooks.generic.as_ref(),
                    }
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "webhooks.{provider} is not configured in {}",
                            config.display()
                        )
                    })?;
                    let reference = if reference.starts_with("refs/") {
                        reference
                    } else {
                        format!("refs/heads/{reference}")
                    };
                    let id = format!("mooring-hook-test-{}", mooring_store::now_ms());
                    let delivery = mooring_server::hooks::sample(
                        &provider,
                        &repository,
                        &reference,
                        secret.expose(),
                        &id,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    client::hook_test(&c, &provider, &delivery.headers, &delivery.body)
                }
            }
        }
        Command::Diff { source, output } => {
            reconcile_source(&g, &source, Mode::Diff, output == Format::Json)
        }
        Command::Sync {
            source,
            dry_run,
            output,
        } => reconcile_source(&g, &source, Mode::Sync { dry_run }, output == Format::Json),
    }
}

enum Mode {
    Diff,
    Sync { dry_run: bool },
}

/// `diff` and `sync`: one path — render the source, then reconcile (dry for `diff`).
fn reconcile_source(
    globals: &Globals,
    source: &SourceArgs,
    mode: Mode,
    json: bool,
) -> Result<ExitCode> {
    let data_dir = globals.data_dir()?;
    let rendered = render::from_source(
        &data_dir,
        &render::SourceRequest {
            source: &source.source,
            reference: source.reference.as_deref(),
            path: &source.path,
            ssh_key: source.ssh_key.as_deref(),
            known_hosts: source.known_hosts.as_deref(),
        },
        &source.render.project(),
        &source.policy.policy(),
        globals.sops_keys()?,
    )?;
    // An app a running daemon manages is the daemon's: its diff is the daemon's (the
    // same render, variables and revision), and a one-shot sync would fight it.
    let name = rendered.project.name.clone();
    if let Some(c) = globals.daemon_of(&name)? {
        if let Mode::Diff = mode {
            eprintln!(
                "note: app {name} is managed by the daemon at {}; this is its diff (`mooring app diff {name}`)",
                c.server()
            );
            return client::diff(&c, &name, json);
        }
        anyhow::bail!(
            "app {name} is managed by the daemon at {}; a one-shot sync would fight it: use `mooring app sync {name}`, or stop the daemon first",
            c.server()
        );
    }
    let dry_run = !matches!(mode, Mode::Sync { dry_run: false });
    let progress = print::Progress::new(json);
    let outcome = block_on(async {
        let provider = Provider::connect(globals.docker_host.as_deref())
            .await?
            .with_registries(std::sync::Arc::new(docker_login::registries()));
        let options = ReconcileOptions {
            prune: source.prune,
            dry_run,
            volume_policy: source.data_policy,
            backups: Some(backup::dir(&data_dir)),
            recreate_volumes: source.recreate_volumes.clone(),
            // A person runs it: a Swarm's images are all asked of their registries.
            resolve_images: true,
            // One-shot syncs take `backup` and `retention` from `x-mooring` on the volumes.
            ..Default::default()
        };
        let prepare = || rendered.materialize();
        Ok(
            reconcile(&provider, &rendered.project, options, &prepare, &|p| {
                progress.report(p)
            })
            .await?,
        )
    })?;
    Ok(match mode {
        Mode::Diff => {
            print::plan(&outcome.plan, &rendered, json);
            if outcome.plan.in_sync() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Mode::Sync { dry_run } => print::sync(&outcome, &rendered, dry_run, json),
    })
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("{s:?}: use baseline, restricted or privileged"))
}

fn parse_exception(s: &str) -> Result<Exception, String> {
    Exception::parse(s).map_err(|e| e.to_string())
}

fn parse_policy(s: &str) -> Result<mooring_core::DataPolicy, String> {
    mooring_core::DataPolicy::parse(s)
        .ok_or_else(|| format!("{s:?}: use protect or backup-then-delete"))
}

/// Logs on stderr: `MOORING_LOG` sets the level (`error`, `warn`, `info` — the default —,
/// `debug`, `trace`), `MOORING_LOG_FORMAT=json` one JSON object per line.
fn init_logging() {
    let level = std::env::var("MOORING_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing::Level::INFO);
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stderr);
    if std::env::var("MOORING_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}
