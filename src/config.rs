//! Settings of `rescue serve`, from (highest precedence first) command-line flags, `RESCUE_*`
//! environment variables, an optional TOML file, and defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{AuthSettings, JwtAlgorithm, JwtSettings};
use crate::scoring::Bands;
use crate::store::{DatabaseUrl, PoolOptions};
use crate::telemetry::LogFormat;
use crate::training::DEFAULT_PROMOTION_MARGIN;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://rescue.db";
/// Long enough for an in-flight batch to commit and a short stream to finish; a load
/// balancer has stopped sending new requests by then.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often the program file is checked for changes.
pub const DEFAULT_PROGRAM_RELOAD: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;
/// Concurrent streams (calls) one HTTP/2 connection may open.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 2_048;
/// Calls running at once over all connections (health and reflection aside): an idle stream
/// costs about 25 KB, so the budget bounds the server's memory for calls at a few hundred MB.
pub const DEFAULT_MAX_CALLS: usize = 10_000;
/// How often the credential files are checked for changes: a revoked key stops working
/// within this.
pub const DEFAULT_CREDENTIALS_RELOAD: Duration = Duration::from_secs(5);

/// The resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub log_format: LogFormat,
    /// How long shutdown waits for in-flight requests before cutting them off.
    pub shutdown_grace: Duration,
    pub pool: PoolOptions,
    /// Health-score thresholds of the bands.
    pub bands: Bands,
    /// How much worse (in hold-out ROC-AUC) a new model may be than the active one and still
    /// be promoted automatically.
    pub promotion_margin: f64,
    /// The recovery program's TOML file; `None` serves the built-in program.
    pub program: Option<PathBuf>,
    /// How often the program file is checked for changes.
    pub program_reload: Duration,
    /// Where credentials come from; `None` serves without authentication.
    pub auth: Option<AuthSettings>,
    /// Serve without authentication on an address beyond loopback.
    pub allow_unauthenticated: bool,
    /// `None` serves plaintext gRPC.
    pub tls: Option<TlsSettings>,
    /// Where Prometheus scrapes `/metrics`; `None` records no metrics.
    pub metrics_listen: Option<SocketAddr>,
    pub limits: Limits,
}

/// How much of the server one client, or all of them, may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_streams_per_connection: u32,
    pub max_calls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_calls: DEFAULT_MAX_CALLS,
        }
    }
}

/// The server's TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain, the server's own first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With it, callers must present a client certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

impl Settings {
    /// Defaults, with the database at `database`; what tests and embedders start from.
    pub fn with_database(database: DatabaseUrl) -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 50051))),
            database,
            log_format: LogFormat::Human,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            pool: PoolOptions::default(),
            bands: Bands::default(),
            promotion_margin: DEFAULT_PROMOTION_MARGIN,
            program: None,
            program_reload: DEFAULT_PROGRAM_RELOAD,
            auth: None,
            allow_unauthenticated: false,
            tls: None,
            metrics_listen: None,
            limits: Limits::default(),
        }
    }

    /// Refuses to serve beyond loopback without authentication unless told to: anyone who
    /// can reach the port could otherwise promote models and read customers.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.auth.is_none() && !self.listen.ip().is_loopback() && !self.allow_unauthenticated {
            anyhow::bail!(
                "refusing to serve {} without authentication: give --api-keys and/or --jwt-key \
                 (with --jwt-issuer and --jwt-audience), or --allow-unauthenticated if something \
                 in front of this server authenticates callers",
                self.listen
            );
        }
        Ok(())
    }
}

/// `rescue serve` options; every one can also come from the environment or the file. One
/// structure for every layer: clap fills it from flags and the environment (flags first), the
/// file is read into it too (its keys are the field names), and [`ServeArgs::over`] lays one on
/// the other, so a setting is declared once here and applied once in [`ServeArgs::resolve`].
#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys: listen, database_url, log_format,
    /// shutdown_grace_seconds, max_db_connections, sqlite_max_size_mb, serving_cache_mb,
    /// promotion_margin, program,
    /// program_reload_seconds, api_keys, jwt_issuer, jwt_audience, jwt_key, jwt_algorithm,
    /// credentials_reload_seconds, allow_unauthenticated, tls_cert, tls_key, tls_client_ca,
    /// metrics_listen, max_connections, max_streams_per_connection, max_calls, and a [bands]
    /// table with healthy, watch and at_risk).
    #[arg(long, env = "RESCUE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on [default: 127.0.0.1:50051].
    #[arg(long, env = "RESCUE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// sqlite://FILE (the embedded default) or postgres://… [default: sqlite://rescue.db].
    /// Held as a secret: printed only with its password hidden.
    #[arg(long = "database", env = "RESCUE_DATABASE_URL", hide_env_values = true, value_parser = parse_database_url)]
    // Never serialized: layered by hand in `over`, so the secret stays in its type.
    #[serde(skip_serializing)]
    pub database_url: Option<DatabaseUrl>,
    /// Log output: human-readable lines or JSON objects [default: human].
    #[arg(long, env = "RESCUE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds shutdown waits for in-flight requests [default: 30].
    #[arg(long, env = "RESCUE_SHUTDOWN_GRACE_SECONDS")]
    pub shutdown_grace_seconds: Option<u64>,
    /// Most database connections this process opens [default: 10].
    #[arg(long, env = "RESCUE_MAX_DB_CONNECTIONS")]
    pub max_db_connections: Option<u32>,
    /// SQLite: the most megabytes the database file may grow to; past it writes get
    /// RESOURCE_EXHAUSTED until space is freed [default: the disk's free space].
    #[arg(long, env = "RESCUE_SQLITE_MAX_SIZE_MB")]
    pub sqlite_max_size_mb: Option<u64>,
    /// Megabytes of stored customer state (as encoded in the database) kept decoded in
    /// memory for customers asked about again; 0 turns the cache off [default: 64].
    #[arg(long, env = "RESCUE_SERVING_CACHE_MB")]
    pub serving_cache_mb: Option<u64>,
    /// Health-score thresholds of the healthy, watch and at-risk bands, descending
    /// [default: 90,80,60].
    #[arg(long, env = "RESCUE_BANDS", value_parser = parse_bands)]
    pub bands: Option<Bands>,
    /// Hold-out ROC-AUC a new model may lose against the active one and still be promoted
    /// automatically [default: 0.005].
    #[arg(long, env = "RESCUE_PROMOTION_MARGIN")]
    pub promotion_margin: Option<f64>,
    /// The recovery program's TOML file (eligibility, protocol and costs, authority,
    /// response targets, holdout); read again whenever it changes [default: the built-in
    /// program].
    #[arg(long, env = "RESCUE_PROGRAM")]
    pub program: Option<PathBuf>,
    /// Seconds between checks of the program file for changes [default: 5].
    #[arg(long, env = "RESCUE_PROGRAM_RELOAD_SECONDS")]
    pub program_reload_seconds: Option<u64>,
    /// The API key file (TOML; keys stored as SHA-256 digests, made by `rescue keys new`);
    /// read again whenever it changes. With it (or --jwt-key) every call but health and
    /// reflection needs a credential.
    #[arg(long, env = "RESCUE_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// The issuer (`iss`) JWTs must name.
    #[arg(long, env = "RESCUE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The audience (`aud`) JWTs must name.
    #[arg(long, env = "RESCUE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The key JWTs are verified with: a PEM public key, an HMAC secret, or a JWK set
    /// (`.json`); read again whenever it changes.
    #[arg(long, env = "RESCUE_JWT_KEY")]
    pub jwt_key: Option<PathBuf>,
    /// The one signing algorithm JWTs may use [default: RS256].
    #[arg(long, env = "RESCUE_JWT_ALGORITHM", value_enum)]
    pub jwt_algorithm: Option<JwtAlgorithm>,
    /// Seconds between checks of the credential files for changes [default: 5].
    #[arg(long, env = "RESCUE_CREDENTIALS_RELOAD_SECONDS")]
    pub credentials_reload_seconds: Option<u64>,
    /// Serve without authentication on an address beyond loopback (when a proxy in front
    /// authenticates callers).
    #[arg(long, env = "RESCUE_ALLOW_UNAUTHENTICATED", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated: Option<bool>,
    /// The server's TLS certificate chain (PEM); with --tls-key, serves gRPC over TLS.
    #[arg(long, env = "RESCUE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "RESCUE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, env = "RESCUE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics [default: off].
    #[arg(long, env = "RESCUE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Connections served at once; more wait until one closes [default: 4096].
    #[arg(long, env = "RESCUE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Concurrent calls one connection may open (HTTP/2 streams) [default: 2048].
    #[arg(long, env = "RESCUE_MAX_STREAMS_PER_CONNECTION")]
    pub max_streams_per_connection: Option<u32>,
    /// Calls running at once over all connections; more are refused with
    /// RESOURCE_EXHAUSTED [default: 10000].
    #[arg(long, env = "RESCUE_MAX_CALLS")]
    pub max_calls: Option<usize>,
}

fn parse_bands(text: &str) -> Result<Bands, String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .map_err(|e| format!("{part:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    match values[..] {
        [healthy, watch, at_risk] => Bands {
            healthy,
            watch,
            at_risk,
        }
        .check(),
        _ => Err(format!(
            "expected three thresholds like 90,80,60, got {text:?}"
        )),
    }
}

fn parse_database_url(text: &str) -> Result<DatabaseUrl, std::convert::Infallible> {
    Ok(DatabaseUrl::new(text))
}

impl ServeArgs {
    /// These settings, each one left unset taken from `lower`.
    fn over(self, mut lower: Self) -> anyhow::Result<Self> {
        let lower_database = lower.database_url.take();
        let (Value::Object(mut layered), Value::Object(upper)) =
            (serde_json::to_value(lower)?, serde_json::to_value(&self)?)
        else {
            anyhow::bail!("settings do not serialize as a map");
        };
        for (key, value) in upper {
            if !value.is_null() {
                layered.insert(key, value);
            }
        }
        let mut layered: Self = serde_json::from_value(Value::Object(layered))?;
        layered.config = self.config;
        layered.database_url = self.database_url.or(lower_database);
        Ok(layered)
    }

    pub fn resolve(self) -> anyhow::Result<Settings> {
        let given = match &self.config {
            Some(path) => {
                let file = read_file(path)?;
                self.over(file)?
            }
            None => self,
        };
        let auth = auth_settings(&given)?;
        let tls = tls_settings(&given)?;
        let database = given
            .database_url
            .unwrap_or_else(|| DatabaseUrl::new(DEFAULT_DATABASE_URL));
        let mut settings = Settings::with_database(database);
        if let Some(listen) = given.listen {
            settings.listen = listen;
        }
        if let Some(format) = given.log_format {
            settings.log_format = format;
        }
        if let Some(seconds) = given.shutdown_grace_seconds {
            settings.shutdown_grace = Duration::from_secs(seconds);
        }
        match given.max_db_connections {
            Some(0) => anyhow::bail!("max_db_connections must be at least 1"),
            Some(connections) => settings.pool.max_connections = connections,
            None => {}
        }
        match given.sqlite_max_size_mb {
            Some(0) => anyhow::bail!("sqlite_max_size_mb must be at least 1"),
            Some(megabytes) => settings.pool.sqlite_max_bytes = Some(megabytes * 1024 * 1024),
            None => {}
        }
        if let Some(megabytes) = given.serving_cache_mb {
            settings.pool.serving_cache_bytes = megabytes
                .checked_mul(1024 * 1024)
                .with_context(|| format!("serving_cache_mb {megabytes} is too large"))?;
        }
        if let Some(bands) = given.bands {
            settings.bands = bands.check().map_err(anyhow::Error::msg)?;
        }
        if let Some(margin) = given.promotion_margin {
            anyhow::ensure!(
                (0.0..=1.0).contains(&margin),
                "promotion_margin must be between 0 and 1, got {margin}"
            );
            settings.promotion_margin = margin;
        }
        settings.auth = auth;
        settings.tls = tls;
        settings.metrics_listen = given.metrics_listen;
        let at_least_one = |value: Option<usize>, name: &str, default: usize| match value {
            Some(0) => anyhow::bail!("{name} must be at least 1"),
            Some(value) => Ok(value),
            None => Ok(default),
        };
        settings.limits = Limits {
            max_connections: at_least_one(
                given.max_connections,
                "max_connections",
                DEFAULT_MAX_CONNECTIONS,
            )?,
            max_streams_per_connection: at_least_one(
                given.max_streams_per_connection.map(|n| n as usize),
                "max_streams_per_connection",
                DEFAULT_MAX_STREAMS_PER_CONNECTION as usize,
            )? as u32,
            max_calls: at_least_one(given.max_calls, "max_calls", DEFAULT_MAX_CALLS)?,
        };
        settings.allow_unauthenticated = given.allow_unauthenticated.unwrap_or(false);
        settings.program = given.program;
        match given.program_reload_seconds {
            Some(0) => anyhow::bail!("program_reload_seconds must be at least 1"),
            Some(seconds) => settings.program_reload = Duration::from_secs(seconds),
            None => {}
        }
        settings.database.backend()?;
        Ok(settings)
    }
}

/// Authentication is on when a key file or a JWT key is given; a JWT key needs its issuer
/// and audience, and they mean nothing without it.
fn auth_settings(given: &ServeArgs) -> anyhow::Result<Option<AuthSettings>> {
    let jwt = match (&given.jwt_key, &given.jwt_issuer, &given.jwt_audience) {
        (Some(key), Some(issuer), Some(audience)) => Some(JwtSettings {
            issuer: issuer.clone(),
            audience: audience.clone(),
            key: key.clone(),
            algorithm: given.jwt_algorithm.unwrap_or(JwtAlgorithm::Rs256),
        }),
        (None, None, None) => None,
        _ => anyhow::bail!("JWTs need all three of jwt_key, jwt_issuer and jwt_audience"),
    };
    if jwt.is_none() && given.jwt_algorithm.is_some() {
        anyhow::bail!("jwt_algorithm is set but no jwt_key is");
    }
    let reload = match given.credentials_reload_seconds {
        Some(0) => anyhow::bail!("credentials_reload_seconds must be at least 1"),
        Some(seconds) => Duration::from_secs(seconds),
        None => DEFAULT_CREDENTIALS_RELOAD,
    };
    if given.api_keys.is_none() && jwt.is_none() {
        return Ok(None);
    }
    Ok(Some(AuthSettings {
        api_keys: given.api_keys.clone(),
        jwt,
        reload,
    }))
}

/// TLS is on with a certificate and its key; a client CA means nothing without them.
fn tls_settings(given: &ServeArgs) -> anyhow::Result<Option<TlsSettings>> {
    match (&given.tls_cert, &given.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsSettings {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: given.tls_client_ca.clone(),
        })),
        (None, None) if given.tls_client_ca.is_none() => Ok(None),
        (None, None) => anyhow::bail!("tls_client_ca needs tls_cert and tls_key"),
        _ => anyhow::bail!("TLS needs both tls_cert and tls_key"),
    }
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("Invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "rescue-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).expect("write temp config");
        path
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = ServeArgs::default().resolve().expect("defaults are valid");
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.database.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(settings.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let path = write_config(
            "listen = \"0.0.0.0:6000\"\ndatabase_url = \"sqlite://from-file.db\"\nshutdown_grace_seconds = 5\n",
        );
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7000".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let settings = args.resolve().expect("valid");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(settings.database.expose(), "sqlite://from-file.db");
        assert_eq!(settings.shutdown_grace, Duration::from_secs(5));
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn every_setting_can_come_from_the_file_and_a_flag_still_wins() {
        let path = write_config(
            "listen = \"0.0.0.0:6001\"\ndatabase_url = \"sqlite://every.db\"\nlog_format = \"json\"\n\
             shutdown_grace_seconds = 7\nmax_db_connections = 3\npromotion_margin = 0.02\n\
             program = \"p.toml\"\nprogram_reload_seconds = 9\n",
        );
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("valid");
        assert_eq!(from_file.listen.to_string(), "0.0.0.0:6001");
        assert_eq!(from_file.database.expose(), "sqlite://every.db");
        assert_eq!(from_file.log_format, LogFormat::Json);
        assert_eq!(from_file.shutdown_grace, Duration::from_secs(7));
        assert_eq!(from_file.pool.max_connections, 3);
        assert_eq!(from_file.promotion_margin, 0.02);
        assert_eq!(from_file.program, Some(PathBuf::from("p.toml")));
        assert_eq!(from_file.program_reload, Duration::from_secs(9));
        let flagged = ServeArgs {
            config: Some(path.clone()),
            max_db_connections: Some(5),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("valid");
        assert_eq!(flagged.pool.max_connections, 5);
        assert_eq!(flagged.program_reload, Duration::from_secs(9));
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn bands_come_from_the_file_and_are_checked() {
        let path = write_config("[bands]\nhealthy = 95\nwatch = 85\nat_risk = 50\n");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let settings = args.resolve().expect("valid bands");
        assert_eq!(
            settings.bands,
            Bands {
                healthy: 95.0,
                watch: 85.0,
                at_risk: 50.0
            }
        );
        std::fs::remove_file(path).ok();

        assert!(parse_bands("90,80,60").is_ok());
        assert!(parse_bands("60,80,90").is_err());
        assert!(parse_bands("90,80").is_err());
    }

    #[test]
    fn beyond_loopback_a_server_needs_authentication_or_an_explicit_waiver() {
        let exposed = ServeArgs {
            listen: Some("0.0.0.0:50051".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let error = exposed
            .clone()
            .resolve()
            .expect("resolves")
            .check_exposure();
        assert!(format!("{:#}", error.expect_err("refused")).contains("without authentication"));
        let waived = ServeArgs {
            allow_unauthenticated: Some(true),
            ..exposed.clone()
        };
        assert!(waived.resolve().expect("resolves").check_exposure().is_ok());
        let keyed = ServeArgs {
            api_keys: Some(PathBuf::from("keys.toml")),
            ..exposed
        };
        let settings = keyed.resolve().expect("resolves");
        assert!(settings.check_exposure().is_ok());
        assert_eq!(
            settings.auth.map(|auth| auth.reload),
            Some(DEFAULT_CREDENTIALS_RELOAD)
        );
        assert!(
            ServeArgs::default()
                .resolve()
                .expect("loopback")
                .check_exposure()
                .is_ok()
        );
    }

    #[test]
    fn a_jwt_key_needs_its_issuer_and_audience() {
        let partial = ServeArgs {
            jwt_key: Some(PathBuf::from("key.pem")),
            jwt_issuer: Some("https://id.example".into()),
            ..ServeArgs::default()
        };
        let error = format!("{:#}", partial.clone().resolve().expect_err("incomplete"));
        assert!(error.contains("jwt_audience"), "{error}");
        let whole = ServeArgs {
            jwt_audience: Some("rescue".into()),
            ..partial
        };
        let jwt = whole
            .resolve()
            .expect("complete")
            .auth
            .and_then(|auth| auth.jwt);
        assert_eq!(jwt.map(|jwt| jwt.algorithm), Some(JwtAlgorithm::Rs256));
    }

    #[test]
    fn a_misspelt_key_or_an_unknown_scheme_is_refused() {
        let path = write_config("lisen = \"0.0.0.0:6000\"\n");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let error = format!("{:#}", args.resolve().expect_err("typo"));
        assert!(error.contains("unknown field `lisen`"), "{error}");
        std::fs::remove_file(path).ok();

        let args = ServeArgs {
            database_url: Some(DatabaseUrl::new("mysql://x")),
            ..ServeArgs::default()
        };
        assert!(args.resolve().is_err());
    }
}
