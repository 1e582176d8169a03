//! millrace's integration tests, one binary (the slow link of wasmtime, axum and OpenTelemetry
//! happens once): real nats-server, real wasmtime, real compiled plugins. A module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod acknowledgements;
mod admin_hardening;
mod cli;
mod cluster;
mod console;
mod contracts;
mod delivery;
mod deployment;
mod flow;
mod governance;
mod lifecycle;
mod nats_security;
mod nats_server;
mod observability;
mod outbound;
mod plugins;
mod projection;
mod properties;
mod sandbox;
mod stand_in_erp;
mod streams;
