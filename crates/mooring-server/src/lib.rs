//! The reconciler daemon (`mooring serve`): configuration, the control loop
//! (scheduler, shared fetches, bounded workers, self-heal from Docker events, retries),
//! the HTTP API with token authentication, webhooks, metrics and the web UI.

pub mod access;
pub mod activity;
pub mod api;
pub mod auth;
pub mod config;
pub mod controller;
pub mod failure;
pub mod headers;
pub mod hooks;
pub mod http;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod panic;
pub mod router;
pub mod routes;
pub mod serve;
pub mod ui;
pub mod views;
