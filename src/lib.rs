//! `rescue` — a customer-health and service-recovery decision service over gRPC.
//!
//! It stores who a customer is, what they did and how they feel, scores their health with a
//! model it trains from churn outcomes, and serves all of it to CRMs and batch jobs.
//!
//! # Layout
//! Data flows top to bottom; each module depends only on those above it.
//! - [`domain`]: validated customer data; built once at the edge, never re-checked.
//! - [`features`]: point-in-time feature vectors, shared by training and serving.
//! - [`model`]: the churn model: linfa training, hold-out metrics, checksummed artifacts.
//! - [`scoring`]: health scores from a loaded model, with the drivers in words.
//! - [`store`]: persistence behind one trait, on SQLite (embedded) or PostgreSQL.
//! - [`simulate`]: a seeded generator of realistic customer data and the truth behind it.
//! - [`registry`], [`training`]: which model serves; training and the promotion gate.
//! - [`proto`]: the generated gRPC contract, package `rescue.v1`.
//! - [`api`]: the gRPC services: proto to domain, call, domain to proto, errors to `Status`.
//! - [`config`], [`telemetry`], [`server`]: settings, logging and wiring.
//! - [`cli`]: the `rescue` command line.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod features;
pub mod model;
pub mod proto;
pub mod registry;
pub mod scoring;
pub mod server;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod training;
