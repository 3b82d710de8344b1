//! The `tollgate` command line. Everything it runs lives in the `tollgate_host` library.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tollgate_host::clock::Clock;
use tollgate_host::{app, assertion, clock::SystemClock, config::Config, jwks, store};

/// The server's allocator. A request allocates on one runtime worker and often frees on
/// another (or on the SQLite writer's thread); glibc's malloc then takes the other thread's
/// arena lock, and its large reads' consolidations showed up as 15 % of a client_credentials
/// request's CPU. mimalloc frees across threads without a lock: server CPU per request −6 %
/// for client_credentials, −10 % for jwt-bearer grants, for ~7 MiB more resident memory.
///
/// It is the process's `malloc` too (the `override` feature: the binary exports `malloc`,
/// `free` and the rest, and the dynamic linker binds the plugins' calls to them). A plugin's
/// Rust code allocates with the system allocator and its C code (aws-lc) with `malloc`; with
/// glibc's, allocation was a quarter of what the plugin ABI costs a grant. Now the ~124
/// allocations of a private_key_jwt grant's plugins are mimalloc's: −2.3 % instructions per
/// grant (callgrind), +1.3 % req/s over 7 interleaved pairs, 5 of them faster (2026-12-06).
/// What crosses the ABI is still freed by the side that made it.
/// SQLite alone keeps glibc's malloc ([`store::sqlite_malloc::use_libc_malloc`], called first).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tollgate: an OAuth 2.0 token service for JWT bearer grants and private_key_jwt, extended by
/// plugins dropped into dropins/ and enabled in identity.xml.
///
/// Logs go to stderr; set their level with TOLLGATE_LOG (e.g. TOLLGATE_LOG=debug). Any
/// deployment.toml key can be overridden with TOLLGATE_<SECTION>__<KEY> (e.g.
/// TOLLGATE_DATABASE__URL). See README.md and docs/operators.md.
#[derive(Parser)]
#[command(name = "tollgate", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server. Prints "Tollgate listening on URL" once ready; stops cleanly on SIGTERM
    /// or SIGINT.
    Serve {
        /// The directory holding deployment.toml and identity.xml. Relative paths in them are
        /// relative to its parent.
        #[arg(long, value_name = "DIR", default_value = "conf")]
        conf: PathBuf,
    },
    /// Lists each plugin file in dropins/ with its ABI version and components (kind, name,
    /// aliases), and whether identity.xml enables each. Exits non-zero naming every file the
    /// server would refuse, and why.
    Plugins {
        /// The directory holding deployment.toml (for [plugins] dropins_dir) and identity.xml.
        #[arg(long, value_name = "DIR", default_value = "conf")]
        conf: PathBuf,
    },
    /// Prints signed JWTs, one per line, each with its own random jti: an identity provider's
    /// assertion for the JWT bearer grant (iss = the IdP's name, aud = its alias), or a client
    /// assertion for private_key_jwt (iss = sub = client_id, aud = the token endpoint URL).
    Assertion {
        #[command(flatten)]
        signer: KeyArgs,
        /// The `iss` claim: the identity provider's name, or the client_id.
        #[arg(long)]
        iss: String,
        /// The `sub` claim. Defaults to --iss.
        #[arg(long)]
        sub: Option<String>,
        /// The `aud` claim: the IdP's alias, or the token endpoint URL.
        #[arg(long, default_value = "https://localhost:9443/oauth2/token")]
        aud: String,
        /// Seconds from now to `exp` (`iat` and `nbf` are now).
        #[arg(long, default_value_t = 300)]
        lifetime: i64,
        /// How many to print.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Prints the public JWKS of a private key file (what an identity provider or a
    /// private_key_jwt client publishes for the key that signs its assertions), or serves it at
    /// http://ADDR/jwks until SIGTERM or SIGINT.
    Jwks {
        #[command(flatten)]
        signer: KeyArgs,
        /// Serve the set at http://ADDR/jwks (e.g. 127.0.0.1:9080) instead of printing it;
        /// prints "JWKS served at URI" once listening.
        #[arg(long, value_name = "ADDR")]
        serve: Option<std::net::SocketAddr>,
    },
}

/// The key file that `tollgate assertion` signs with and `tollgate jwks` publishes.
#[derive(clap::Args)]
struct KeyArgs {
    /// PEM private key (PKCS#8, or PKCS#1 for RSA).
    #[arg(long, value_name = "PEM")]
    key: PathBuf,
    /// The algorithm the key signs with: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384
    /// or EdDSA. It is the JWK's `alg` and the assertions' `alg` header.
    #[arg(long, default_value = "RS256")]
    alg: String,
    /// The key's id in the issuer's JWKS: the JWK's `kid` and the assertions' `kid` header.
    #[arg(long)]
    kid: Option<String>,
}

fn main() -> ExitCode {
    let sqlite_malloc = store::sqlite_malloc::use_libc_malloc();
    let cli = Cli::parse();
    app::init_logging();
    if let Err(e) = sqlite_malloc {
        tracing::warn!("{e}; SQLite allocates with mimalloc, which keeps more memory resident");
    }
    match cli.command {
        Command::Serve { conf } => match app::serve(&conf, Vec::new()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Assertion {
            signer: KeyArgs { key, alg, kid },
            iss,
            sub,
            aud,
            lifetime,
            count,
        } => {
            let minted = assertion::algorithm(&alg).and_then(|alg| {
                let signing_key = assertion::key(&key, alg)?;
                let spec = assertion::Spec {
                    alg,
                    kid,
                    iss,
                    sub,
                    aud,
                    lifetime,
                };
                assertion::mint(&spec, &signing_key, SystemClock.now(), count)
            });
            match minted {
                Ok(jwts) => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    for jwt in jwts {
                        if writeln!(out, "{jwt}").is_err() {
                            return ExitCode::FAILURE;
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Jwks {
            signer: KeyArgs { key, alg, kid },
            serve,
        } => {
            let jwks = assertion::algorithm(&alg)
                .and_then(|alg| jwks::from_key_file(&key, alg, kid.as_deref()));
            match (jwks, serve) {
                (Err(e), _) => fail(&e),
                (Ok(jwks), None) => {
                    println!("{jwks}");
                    ExitCode::SUCCESS
                }
                (Ok(jwks), Some(addr)) => serve_jwks(addr, jwks),
            }
        }
        Command::Plugins { conf } => {
            let config = match Config::load(&conf) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string()),
            };
            match app::plugins_report(&config) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(report) => {
                    print!("{report}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve_jwks(addr: std::net::SocketAddr, jwks: serde_json::Value) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async {
        let signal = match app::shutdown_signal() {
            Ok(s) => s,
            Err(e) => return fail(&format!("cannot install signal handlers: {e}")),
        };
        let ready = |uri: &str| println!("JWKS served at {uri}");
        match jwks::serve(addr, jwks, ready, signal).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tollgate: {message}");
    ExitCode::FAILURE
}
