//! Benchmark floor (not a test): creates and starts N containers straight through the
//! Docker Engine API (bollard), in parallel, on one fresh network — what any tool must
//! at least spend — and prints the milliseconds, then removes everything.
//!
//! `cargo run --release -p mooring-docker --example raw_floor -- N IMAGE`

use bollard::container::{
    Config, CreateContainerOptions, RemoveContainerOptions, StartContainerOptions,
};
use bollard::models::HostConfig;
use bollard::network::CreateNetworkOptions;
use futures_util::future::join_all;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or_else(|| "10".into()).parse()?;
    let image = args
        .next()
        .unwrap_or_else(|| "mooring.local/busybox:latest".into());
    let docker = bollard::Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await?;
    let net = format!("rawfloor{}_default", std::process::id());
    let start = Instant::now();
    docker
        .create_network(CreateNetworkOptions {
            name: net.clone(),
            driver: "bridge".into(),
            ..Default::default()
        })
        .await?;
    let names: Vec<String> = (0..n)
        .map(|i| format!("rawfloor{}-s{i}-1", std::process::id()))
        .collect();
    let results = join_all(names.iter().map(|name| {
        let docker = &docker;
        let (image, net) = (image.clone(), net.clone());
        async move {
            let config = Config {
                image: Some(image),
                cmd: Some(vec!["sleep".to_string(), "3600".to_string()]),
                host_config: Some(HostConfig {
                    init: Some(true),
                    network_mode: Some(net),
                    ..Default::default()
                }),
                ..Default::default()
            };
            docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: name.clone(),
                        platform: None,
                    }),
                    config,
                )
                .await?;
            docker
                .start_container(name, None::<StartContainerOptions<String>>)
                .await
        }
    }))
    .await;
    let elapsed = start.elapsed();
    for name in &names {
        let _ = docker
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    let _ = docker.remove_network(&net).await;
    for r in results {
        r?;
    }
    println!("{:.1}", elapsed.as_secs_f64() * 1000.0);
    Ok(())
}
