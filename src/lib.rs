//! `rescue` — a customer-health and service-recovery decision service over gRPC.
//!
//! It stores who a customer is, what they did and how they feel, and (as it grows) scores
//! their health and tells a CRM whether recovering them pays.
//!
//! # Layout
//! Data flows top to bottom; each module depends only on those above it.
//! - [`domain`]: validated customer data; built once at the edge, never re-checked.
//! - [`features`]: point-in-time feature vectors, shared by training and serving.
//! - [`store`]: persistence behind one trait, on SQLite (embedded) or PostgreSQL.
//! - [`proto`]: the generated gRPC contract, package `rescue.v1`.
//! - [`api`]: the gRPC services: proto to domain, call, domain to proto, errors to `Status`.
//! - [`config`], [`telemetry`], [`server`]: settings, logging and wiring.
//! - [`cli`]: the `rescue` command line.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod features;
pub mod proto;
pub mod server;
pub mod store;
pub mod telemetry;
