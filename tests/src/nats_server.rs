//! A nats-server of the test's own, with JetStream storing in files in a temporary folder, on a
//! free loopback port, so a test can restart it without touching anybody else's server.

use std::io::{self, BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the server may take to answer after it was started.
const STARTUP: Duration = Duration::from_secs(30);

/// The administrator of a [secured](NatsServer::start_secured) server, who may do anything.
pub const ADMIN_USER: (&str, &str) = ("admin", "nats-admin-password-0b7e");
/// The worker of a [secured](NatsServer::start_secured) server, who may not create, change
/// or delete streams and consumers.
pub const WORKER_USER: (&str, &str) = ("worker", "nats-worker-password-d24a");
/// The JetStream API subjects [`WORKER_USER`] may not publish to.
const WORKER_DENIED: &str = r#"["$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>", "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>", "$JS.API.CONSUMER.DELETE.>"]"#;

/// A running nats-server child process, stopped by PID when dropped.
pub struct NatsServer {
    port: u16,
    dir: TempDir,
    jetstream: bool,
    /// The one user the server admits, and its password; `None`: anyone.
    user: Option<(String, String)>,
    /// TLS only, with [`ADMIN_USER`] and [`WORKER_USER`] (a configuration file in `dir`).
    secured: bool,
    child: Mutex<Child>,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port of 127.0.0.1, its store in a new
    /// temporary folder.
    pub fn start() -> io::Result<Self> {
        Self::start_with(true, None)
    }

    /// Starts a server without JetStream, as a misconfigured deployment would run.
    pub fn start_without_jetstream() -> io::Result<Self> {
        Self::start_with(false, None)
    }

    /// Starts a server with JetStream that admits only `user` with `password`.
    pub fn start_with_user(user: &str, password: &str) -> io::Result<Self> {
        Self::start_with(true, Some((user.to_owned(), password.to_owned())))
    }

    /// Starts a server with JetStream that speaks TLS only (certificates made by the test,
    /// see [`ca_file`](Self::ca_file)) and admits [`ADMIN_USER`] and [`WORKER_USER`].
    pub fn start_secured() -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let files = crate::certificates::write(dir.path())?;
        let store = dir.path().join("store");
        let (admin, admin_password) = ADMIN_USER;
        let (worker, worker_password) = WORKER_USER;
        std::fs::write(
            dir.path().join("nats.conf"),
            format!(
                r#"
host: 127.0.0.1
port: {port}
jetstream {{ store_dir: "{store}" }}
tls {{ cert_file: "{cert}", key_file: "{key}" }}
authorization {{
  users = [
    {{ user: "{admin}", password: "{admin_password}" }}
    {{ user: "{worker}", password: "{worker_password}", permissions: {{ publish: {{ allow: [">"], deny: {WORKER_DENIED} }} }} }}
  ]
}}
"#,
                store = store.display(),
                cert = files.cert.display(),
                key = files.key.display(),
            ),
        )?;
        Self::started(port, dir, true, None, true)
    }

    fn start_with(jetstream: bool, user: Option<(String, String)>) -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        Self::started(port, dir, jetstream, user, false)
    }

    fn started(
        port: u16,
        dir: TempDir,
        jetstream: bool,
        user: Option<(String, String)>,
        secured: bool,
    ) -> io::Result<Self> {
        let child = spawn(port, &dir, jetstream, user.as_ref(), secured)?;
        let server = Self {
            port,
            dir,
            jetstream,
            user,
            secured,
            child: Mutex::new(child),
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// The `tls://` URL of a [secured](Self::start_secured) server for `(user, password)`.
    pub fn tls_url(&self, (user, password): (&str, &str)) -> String {
        format!("tls://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// The PEM file of the CA that signed a secured server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The URL clients connect to (with the user's credentials, when it has a user).
    pub fn url(&self) -> String {
        match &self.user {
            Some((user, password)) => format!("nats://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Stops the server (SIGTERM, by PID, which lets it write its store) and starts it again
    /// on the same port and store.
    pub fn restart(&self) -> io::Result<()> {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stop(&mut child)?;
        *child = spawn(
            self.port,
            &self.dir,
            self.jetstream,
            self.user.as_ref(),
            self.secured,
        )?;
        drop(child);
        self.wait_until_ready()
    }

    /// Waits until the server greets clients (saying JetStream is on, if it should be).
    fn wait_until_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if greets(self.port, self.jetstream).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not greet clients",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = stop(child);
    }
}

/// `NATS_SERVER_BIN`, else `nats-server` on the PATH, else Debian's `/usr/sbin/nats-server`.
fn binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("NATS_SERVER_BIN") {
        return binary.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn spawn(
    port: u16,
    dir: &TempDir,
    jetstream: bool,
    user: Option<&(String, String)>,
    secured: bool,
) -> io::Result<Child> {
    let mut command = Command::new(binary());
    if secured {
        return command
            .arg("-c")
            .arg(dir.path().join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
    command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, password)) = user {
        command.args(["--user", user, "--pass", password]);
    }
    if jetstream {
        command.arg("-js").arg("-sd").arg(dir.path());
    }
    command.stdout(Stdio::null()).stderr(Stdio::null()).spawn()
}

fn stop(child: &mut Child) -> io::Result<()> {
    if child.try_wait()?.is_none() {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
    }
    child.wait().map(drop)
}

/// Whether the server greets with `INFO {…}`, saying JetStream is on when `jetstream`.
fn greets(port: u16, jetstream: bool) -> io::Result<bool> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut greeting = String::new();
    BufReader::new(stream).read_line(&mut greeting)?;
    Ok(greeting.starts_with("INFO ") && (!jetstream || greeting.contains("\"jetstream\":true")))
}
