//! Integration tests: a real gRPC server on an ephemeral port over a real database — a fresh
//! SQLite file, and a fresh PostgreSQL database when `RESCUE_TEST_POSTGRES_URL` is set.

mod fixtures;
mod helpers;

mod audit;
mod auth;
mod backpressure;
mod binary;
mod client;
mod disk_full;
mod funnel;
mod health;
mod ingest;
mod limits;
mod metrics;
mod model_quality;
mod models;
mod readme_tour;
mod real_data;
mod recommend;
mod recovery_outcome;
mod scoring;
mod serving_state;
mod simulate;
mod store_contract;
mod tls;
mod uplift;
mod uplift_effects;
mod vocabulary;
