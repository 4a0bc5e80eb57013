//! A redis-server of the test's own, persisting every write (AOF, fsync always), on a free
//! loopback port, so a test can restart it without touching anybody else's server. It may
//! speak TLS only, with certificates made for it, and admit only a least-privileged user.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the server may take to answer after it was started.
const STARTUP: Duration = Duration::from_secs(20);

/// The user a TLS server admits; its password is [`TLS_PASSWORD`].
pub const TLS_USER: &str = "bus";
/// The password of [`TLS_USER`].
pub const TLS_PASSWORD: &str = "tls-user-password-7d1f";
/// A TLS server's second user, of least privilege; its password is [`WORKER_PASSWORD`].
pub const WORKER_USER: &str = "worker";
/// The password of [`WORKER_USER`].
pub const WORKER_PASSWORD: &str = "worker-password-41c9";
/// What [`WORKER_USER`] may not do beyond [`TLS_USER`]'s limits: create, move or destroy
/// consumer groups (what `EVENT_BUS_TOPOLOGY=existing` leaves to `eventbus setup`).
const WORKER_DENIED: &str = "-xgroup|create -xgroup|destroy -xgroup|setid";

/// What [`TLS_USER`] may do: the command groups the bus uses (streams, sorted sets, strings,
/// hashes, keys, scripts, connection) on any key; no administration, no `FLUSHALL`.
const TLS_USER_RULES: &str = "on ~* &* -@all +@stream +@sortedset +@string +@hash +@keyspace +@scripting +@connection -@dangerous +xinfo +time";

/// A running redis-server child process, stopped by PID when dropped.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    tls: bool,
    child: Mutex<Child>,
}

impl RedisServer {
    /// Starts a server on a free port of 127.0.0.1 with its data in a new temporary folder.
    pub fn start() -> io::Result<Self> {
        Self::start_with(false)
    }

    /// Starts a server that speaks TLS only (a CA of its own signs its certificate, see
    /// [`ca_file`](Self::ca_file)) and admits only [`TLS_USER`].
    pub fn start_tls() -> io::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        if tls {
            crate::certificates::write(dir.path())?;
        }
        let child = spawn(port, &dir, tls)?;
        let server = Self {
            port,
            dir,
            tls,
            child: Mutex::new(child),
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// The URL clients connect to (with the user's credentials over TLS).
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{}", self.port)
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    /// The URL of a TLS server for [`WORKER_USER`], who may not create consumer groups.
    pub fn worker_url(&self) -> String {
        format!(
            "rediss://{WORKER_USER}:{WORKER_PASSWORD}@127.0.0.1:{}",
            self.port
        )
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Whether the server speaks TLS only.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Stops the server (SIGTERM, by PID) and starts it again on the same port and data.
    pub fn restart(&self) -> io::Result<()> {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stop(&mut child)?;
        *child = spawn(self.port, &self.dir, self.tls)?;
        drop(child);
        self.wait_until_ready()
    }

    fn wait_until_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let ready = if self.tls {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                ping(self.port).unwrap_or(false)
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not answer PING",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = stop(child);
    }
}

fn spawn(port: u16, dir: &TempDir, tls: bool) -> io::Result<Child> {
    let mut command = Command::new("redis-server");
    command.args(["--bind", "127.0.0.1", "--save", ""]);
    if tls {
        let file = |name: &str| dir.path().join(name).display().to_string();
        command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .args(["--user", "default", "off", "--user", TLS_USER])
            .arg(format!(">{TLS_PASSWORD}"))
            .args(TLS_USER_RULES.split_whitespace())
            .args(["--user", WORKER_USER])
            .arg(format!(">{WORKER_PASSWORD}"))
            .args(TLS_USER_RULES.split_whitespace())
            .args(WORKER_DENIED.split_whitespace());
    } else {
        command.args(["--port", &port.to_string()]);
    }
    command
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn stop(child: &mut Child) -> io::Result<()> {
    if child.try_wait()?.is_none() {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
    }
    child.wait().map(drop)
}

fn ping(port: u16) -> io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut reply = [0_u8; 7];
    let read = stream.read(&mut reply)?;
    Ok(reply[..read].starts_with(b"+PONG"))
}
