//! A Tansu broker of the test's own (a Kafka-compatible broker keeping its data in a SQLite
//! file), on a free loopback port, so a test can kill and restart it without touching anybody
//! else's server. The binary is Tansu built with its `libsql` storage engine, which
//! `scripts/services.sh` builds once into a cache folder and names in `TANSU_BIN`. A secure
//! broker speaks TLS only (certificates made for it) and requires SASL authentication, with
//! SCRAM users created beforehand.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the broker may take to open its port after it was started.
const STARTUP: Duration = Duration::from_secs(30);

/// The index Tansu 0.6's SQLite schema lacks (see [`TansuServer::index_record_headers`]);
/// `scripts/services.sh` adds the same to the broker it starts.
const HEADER_INDEX: &str =
    "create index if not exists header_topition_offset on header (topition, offset_id);";

/// The cached build `scripts/services.sh` makes when `TANSU_BIN` is not set.
const CACHED_BINARY: &str = "event-bus/tansu-0.6.0-libsql/bin/tansu";

/// The SCRAM-SHA-512 user a secure broker knows; its password is [`SASL_PASSWORD`].
pub const SASL_USER: &str = "bus";
/// The password of [`SASL_USER`].
pub const SASL_PASSWORD: &str = "kafka-sasl-password-93e1";

/// A running Tansu child process, killed by PID when dropped.
pub struct TansuServer {
    /// The port clients connect to (and Tansu advertises).
    port: u16,
    /// The port Tansu listens on: [`port`](Self::port), or behind the TLS proxy of a secure
    /// broker.
    listen_port: u16,
    dir: TempDir,
    child: Mutex<Option<Child>>,
    secure: Option<Secure>,
}

/// The TLS front of a secure broker.
struct Secure {
    files: crate::certificates::CertificateFiles,
    _proxy: crate::tls_proxy::TlsProxy,
}

impl TansuServer {
    /// Starts a broker on a free port of 127.0.0.1, its SQLite file in a new temporary folder.
    pub fn start() -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = Self {
            port,
            listen_port: port,
            dir: tempfile::tempdir()?,
            child: Mutex::new(None),
            secure: None,
        };
        server.boot()?;
        Ok(server)
    }

    /// Starts a broker that speaks TLS only, with a certificate a CA of its own signed (see
    /// [`ca_file`](Self::ca_file)), and requires SASL authentication; [`SASL_USER`] is a
    /// SCRAM-SHA-512 user. Tansu stores SCRAM credentials in its storage and creates them only
    /// over its open listener, so the broker first runs open while the user is created, then
    /// with `--authentication`. Tansu 0.6 cannot serve TLS itself (see
    /// [`tls_proxy`](crate::tls_proxy)), so clients reach it through a TLS proxy on the port
    /// it advertises.
    pub fn start_secure() -> io::Result<Self> {
        let mut server = Self::start()?;
        let created = Command::new(tansu_binary())
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", server.listen_port))
            .args([SASL_USER, SASL_PASSWORD, "--mechanism", "scram512"])
            .stdin(Stdio::null())
            .output()?;
        if !created.status.success() {
            return Err(io::Error::other(format!(
                "`tansu user create` exited with {}: {}",
                created.status,
                String::from_utf8_lossy(&created.stderr)
            )));
        }
        server.kill()?;
        let files = crate::certificates::write(server.dir.path())?;
        let front = TcpListener::bind("127.0.0.1:0")?;
        server.port = front.local_addr()?.port();
        let proxy = crate::tls_proxy::TlsProxy::start(front, &files, server.listen_port)?;
        server.secure = Some(Secure {
            files,
            _proxy: proxy,
        });
        server.boot()?;
        Ok(server)
    }

    /// The CA certificate a client of a secure broker trusts.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.secure.as_ref().map(|secure| secure.files.ca.as_path())
    }

    /// The `KAFKA_*` variables of a client of this broker; for a secure broker, SASL_SSL with
    /// SCRAM-SHA-512 as [`SASL_USER`] with `password`, trusting the broker's CA.
    pub fn client_variables(&self, password: &str) -> Vec<(&'static str, String)> {
        let mut vars = vec![("KAFKA_BOOTSTRAP_SERVERS", self.bootstrap_servers())];
        if let Some(ca) = self.ca_file() {
            vars.extend([
                ("KAFKA_PROPERTY_SECURITY_PROTOCOL", "SASL_SSL".to_owned()),
                ("KAFKA_PROPERTY_SASL_MECHANISM", "SCRAM-SHA-512".to_owned()),
                ("KAFKA_PROPERTY_SASL_USERNAME", SASL_USER.to_owned()),
                ("KAFKA_PROPERTY_SASL_PASSWORD", password.to_owned()),
                ("KAFKA_PROPERTY_SSL_CA_LOCATION", ca.display().to_string()),
            ]);
        }
        vars
    }

    /// `bootstrap.servers` of the broker.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL, by PID) and starts it again on the same port and data.
    pub fn restart(&self) -> io::Result<()> {
        self.kill()?;
        self.boot()
    }

    /// Kills the broker with SIGKILL, by PID, and waits until it is gone; what it
    /// acknowledged must be in its SQLite file already.
    pub fn kill(&self) -> io::Result<()> {
        if let Some(mut child) = self.lock().take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the stopped broker on its port and data, and waits until it accepts connections.
    pub fn boot(&self) -> io::Result<()> {
        let mut slot = self.lock();
        if slot.is_some() {
            return Ok(());
        }
        let binary = tansu_binary();
        let listener = format!("tcp://127.0.0.1:{}", self.listen_port);
        let advertised = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))?;
        let mut command = Command::new(&binary);
        command
            .arg("broker")
            .args(["--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"]);
        if self.secure.is_some() {
            command.arg("--authentication");
        }
        let mut child = command
            // The SQLite URL is relative to the working folder.
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot run Tansu at {}: {error} (scripts/services.sh builds it; or set TANSU_BIN)",
                        binary.display()
                    ),
                )
            })?;
        let deadline = Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", self.listen_port)).is_err() {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "Tansu exited with {status}; its log: {}",
                    self.log()
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("Tansu did not open 127.0.0.1:{}", self.listen_port),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        *slot = Some(child);
        drop(slot);
        self.index_record_headers()
    }

    /// Indexes Tansu's `header` table by record, which Tansu 0.6 leaves without any index: it
    /// reads a fetched record's headers with one query per record, so without the index each
    /// fetch scans every header the broker holds, and a group catching up on a backlog of
    /// thousands of events holds the broker (which runs one storage operation at a time) for
    /// seconds per fetch, past its members' session timeout. Run with the `sqlite3` shell once
    /// Tansu created its tables (it does before it listens).
    fn index_record_headers(&self) -> io::Result<()> {
        let status = Command::new("sqlite3")
            .args(["-cmd", ".timeout 10000", "tansu.db", HEADER_INDEX])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .status()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot run sqlite3: {error} (apt-get install sqlite3)"),
                )
            })?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "indexing Tansu's headers failed: sqlite3 exited with {status}"
            )));
        }
        Ok(())
    }

    /// What the broker wrote to its standard output and error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TansuServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// `TANSU_BIN`, or the build `scripts/services.sh` caches under `XDG_CACHE_HOME` (or
/// `~/.cache`).
pub fn tansu_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(binary);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_default();
    cache.join(CACHED_BINARY)
}
