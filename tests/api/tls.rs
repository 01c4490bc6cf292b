//! TLS end to end with certificates made here: a server with its certificate, `rescue-client`
//! trusting the test CA, client certificates when the server requires them, a plaintext
//! client refused by a TLS server; and the store's connections to PostgreSQL over TLS.

use std::path::PathBuf;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rescue::auth::{AuthSettings, Role, key_digest, new_key};
use rescue::config::TlsSettings;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{CLIENT, Scratch, TestApp, TestDatabase, spawn_app_with};

/// A test CA and, signed by it, a certificate for `localhost` (the server) and one for a
/// client, all written as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(scratch: &Scratch) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let signed = |names: Vec<String>, stem: &str| {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(names)
                .expect("params")
                .signed_by(&key, &ca)
                .expect("signed certificate");
            (
                scratch.file(&format!("{stem}.pem"), &cert.pem()),
                scratch.file(&format!("{stem}-key.pem"), &key.serialize_pem()),
            )
        };
        let (server_cert, server_key) = signed(vec!["localhost".into()], "server");
        let (client_cert, client_key) = signed(vec!["batch-runner".into()], "client");
        Self {
            ca: scratch.file("ca.pem", &ca.pem()),
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    fn server_settings(&self, require_client_certificates: bool) -> TlsSettings {
        TlsSettings {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: require_client_certificates.then(|| self.ca.clone()),
        }
    }

    async fn channel(
        &self,
        app: &TestApp,
        with_client_certificate: bool,
    ) -> Result<Channel, tonic::transport::Error> {
        let read = |path: &PathBuf| std::fs::read(path).expect("read a PEM file");
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)));
        if with_client_certificate {
            tls = tls.identity(Identity::from_pem(
                read(&self.client_cert),
                read(&self.client_key),
            ));
        }
        Channel::from_shared(https(app))
            .expect("endpoint")
            .tls_config(tls)
            .expect("TLS configuration")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
    }
}

fn https(app: &TestApp) -> String {
    format!("https://localhost:{}", app.address.port())
}

async fn serving(channel: Channel) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

fn run_client(args: &[&str]) -> std::process::Output {
    std::process::Command::new(CLIENT)
        .args(args)
        .output()
        .expect("run rescue-client")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// The client runs as a blocking child process: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_answers_rescue_client_and_refuses_plaintext() {
    let scratch = Scratch::new();
    let pki = Pki::new(&scratch);
    let key = new_key();
    let keys = scratch.file(
        "keys.toml",
        &format!(
            "[[keys]]\nname = \"ops\"\nsha256 = \"{}\"\nroles = [\"{}\"]\n",
            key_digest(&key),
            Role::Read
        ),
    );
    let database = TestDatabase::sqlite();
    let app = spawn_app_with(&database, |settings| {
        settings.tls = Some(pki.server_settings(false));
        settings.auth = Some(AuthSettings {
            api_keys: Some(keys),
            jwt: None,
            reload: Duration::from_secs(5),
        });
    })
    .await;
    let channel = pki.channel(&app, false).await.expect("a TLS connection");
    serving(channel).await.expect("health over TLS");

    let ca = pki.ca.to_str().expect("path");
    let server = https(&app);
    let listed = run_client(&[
        "--server", &server, "--ca", ca, "--token", &key, "models", "list",
    ]);
    assert!(listed.status.success(), "{}", stderr(&listed));

    // Without the test CA the server's certificate is not trusted.
    let untrusted = run_client(&[
        "--server",
        &server,
        "--token",
        &key,
        "--connect-timeout",
        "5",
        "models",
        "list",
    ]);
    assert!(!untrusted.status.success());
    // Plaintext to a TLS server fails, and says TLS may be why.
    let plain = format!("http://127.0.0.1:{}", app.address.port());
    let plaintext = run_client(&[
        "--server",
        &plain,
        "--token",
        &key,
        "--connect-timeout",
        "5",
        "--timeout",
        "5",
        "models",
        "list",
    ]);
    assert!(!plaintext.status.success());
    let error = stderr(&plaintext);
    assert!(error.contains("https://"), "{error}");
    // TLS options with a plaintext address are a mistake, said before connecting.
    let mixed = run_client(&["--server", &plain, "--ca", ca, "models", "list"]);
    assert!(stderr(&mixed).contains("plaintext"), "{}", stderr(&mixed));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_requiring_client_certificates_admits_only_holders() {
    let scratch = Scratch::new();
    let pki = Pki::new(&scratch);
    let database = TestDatabase::sqlite();
    let app = spawn_app_with(&database, |settings| {
        settings.tls = Some(pki.server_settings(true));
    })
    .await;
    let with = pki
        .channel(&app, true)
        .await
        .expect("a mutual-TLS connection");
    serving(with)
        .await
        .expect("health with a client certificate");
    let without = match pki.channel(&app, false).await {
        Ok(channel) => serving(channel).await.is_ok(),
        Err(_) => false,
    };
    assert!(!without, "a client without a certificate was served");

    let server = https(&app);
    let ca = pki.ca.to_str().expect("path");
    let cert = pki.client_cert.to_str().expect("path");
    let key = pki.client_key.to_str().expect("path");
    let listed = run_client(&[
        "--server",
        &server,
        "--ca",
        ca,
        "--client-cert",
        cert,
        "--client-key",
        key,
        "models",
        "list",
    ]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    app.stop().await;
}

/// With `sslmode=require` every connection the server opens to PostgreSQL is encrypted; a
/// server without TLS refuses such a client, and the store says so.
#[tokio::test]
async fn the_store_reaches_postgres_over_tls_when_required() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let admin = sqlx::PgPool::connect(database.url.expose())
        .await
        .expect("connect");
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&admin)
        .await
        .expect("the server's ssl setting");
    let required =
        rescue::store::DatabaseUrl::new(format!("{}?sslmode=require", database.url.expose()));
    let opened = rescue::store::open(&required, rescue::store::PoolOptions::default()).await;
    if ssl != "on" {
        let error = format!("{:#}", opened.expect_err("no TLS on the server"));
        assert!(
            error.to_lowercase().contains("ssl") || error.to_lowercase().contains("tls"),
            "{error}"
        );
        return;
    }
    let store = opened.expect("open the store over TLS");
    store.ping().await.expect("the store answers over TLS");
    let name = database
        .url
        .expose()
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_one(&admin)
    .await
    .expect("connection statistics");
    assert!(encrypted >= 1, "no encrypted connection");
    assert_eq!(plain, 0, "a store connection in plaintext");
    drop(store);
    admin.close().await;
}
