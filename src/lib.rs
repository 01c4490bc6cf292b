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
//! - [`uplift`]: the recovery uplift model: retention if a failure is recovered vs if not.
//! - [`scoring`]: health scores from a loaded model, with the drivers in words.
//! - [`decision`]: the recovery policy (invest or not, how, by when, approved by whom) and
//!   the program's funnel.
//! - [`store`]: persistence behind one trait, on SQLite (embedded) or PostgreSQL.
//! - [`simulate`]: a seeded generator of realistic customer data and the truth behind it.
//! - [`registry`], [`training`]: which model serves; training and the promotion gate.
//! - [`program_file`]: which recovery program serves, reloaded when its file changes.
//! - [`recommendation`]: a recovery recommendation end to end: history, score, estimates,
//!   the program's policy, the stored decision.
//! - [`auth`]: who is calling (API keys, JWTs) and which role each RPC needs.
//! - [`proto`]: the generated gRPC contract, package `rescue.v1`.
//! - [`api`]: the gRPC services: proto to domain, call, domain to proto, errors to `Status`.
//! - [`config`], [`telemetry`], [`server`]: settings, logging and wiring; every process
//!   allocates with mimalloc (`allocator`).
//! - [`cli`]: the `rescue` command line.
//! - [`client`]: `rescue-client`: file backfills, batch scoring and model administration.

mod allocator;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod decision;
pub mod domain;
pub mod features;
pub mod model;
pub mod program_file;
pub mod proto;
pub mod recommendation;
pub mod registry;
mod reloading;
pub mod scoring;
pub mod server;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod training;
pub mod uplift;
